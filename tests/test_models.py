import pytest
import torch
from hydra.utils import instantiate

from colorlab.models import Colorizer, baseline, vgg16, vgg16_fusion
from colorlab.module import ColorizationModule

BUILDERS = {
    "baseline": lambda: baseline(),
    "vgg16": lambda: vgg16(pretrained=False),
    "vgg16_fusion": lambda: vgg16_fusion(pretrained=False),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_maps_L_to_ab_at_native_size_and_64(name):
    net = BUILDERS[name]()
    assert isinstance(net, Colorizer)
    for size in (net.native_size, 64):
        L = torch.rand(2, 1, size, size) * 100
        with torch.no_grad():
            ab = net(L)
        assert ab.shape == (2, 2, size, size)
        assert ab.abs().max() < 1.0


def test_native_sizes_are_the_references():
    assert baseline().native_size == 256
    assert vgg16(pretrained=False).native_size == 224


def test_baseline_structure_matches_the_reference():
    net = baseline()
    convs = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 8
    assert [c.stride[0] for c in convs] == [2, 1, 2, 1, 2, 1, 1, 1]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    fusion_convs = [m for m in net.fusion.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in fusion_convs] == [(1, 1)]
    decoder_convs = [m for m in net.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(decoder_convs) == 4 and net.head.conv.out_channels == 2  # 5 with the head's
    assert net.head.conv.kernel_size == (3, 3) and isinstance(net.head.activation, torch.nn.Tanh)
    features = net.encoder(torch.rand(1, 1, 256, 256) * 100)
    assert features.shape[-2:] == (32, 32)


@pytest.mark.parametrize("name", ["vgg16", "vgg16_fusion"])
def test_vgg_is_frozen_and_not_optimised(name):
    module = ColorizationModule(
        model={"_target_": f"colorlab.models.{name}", "pretrained": False, "native_size": 224},
        loss={"_target_": "colorlab.losses.RegressionLoss"},
        optimizer={"_target_": "torch.optim.RMSprop", "_partial_": True, "lr": 1e-3},
    )
    vgg = module.net.encoder if name == "vgg16" else module.net.feature_extractor
    module.train()
    assert not vgg.training, "the frozen VGG-16 must stay in eval mode"
    before = {k: v.clone() for k, v in vgg.state_dict().items()}
    L = torch.rand(2, 1, 64, 64) * 100
    ab = torch.rand(2, 2, 64, 64) * 2 - 1
    optimizer = module.configure_optimizers()
    loss = module.loss_fn(module.net(L), {"L": L, "ab": ab})
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in vgg.parameters())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in vgg.parameters()}
    assert in_optimizer == {id(p) for p in module.net.parameters() if p.requires_grad}
    assert all(torch.equal(before[k], v) for k, v in vgg.state_dict().items())


def test_rejects_wrong_input_shapes():
    net = baseline()
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 1, 60, 64))
    with pytest.raises(ValueError, match="B×1×H×W"):
        net(torch.zeros(1, 3, 64, 64))


def test_configs_instantiate_each_model(tmp_path):
    from conftest import compose_train

    for name, size in (("baseline", 256), ("vgg16", 224), ("vgg16_fusion", 224)):
        cfg = compose_train(
            f"model={name}",
            "model.pretrained=false" if name != "baseline" else "seed=1",
            run_dir=tmp_path,
        )
        assert cfg.data.image_size == size
        assert instantiate(cfg.model).native_size == size


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_schedulers_from_config(tmp_path, scheduler):
    from colorlab.tracking import plain
    from conftest import compose_train

    cfg = compose_train(f"scheduler={scheduler}", "trainer.max_epochs=7", run_dir=tmp_path)
    module = ColorizationModule(
        model=plain(cfg.model),
        loss=plain(cfg.loss),
        optimizer=plain(cfg.optimizer),
        scheduler=plain(cfg.scheduler),
    )
    configured = module.configure_optimizers()
    lr_scheduler = configured["lr_scheduler"]
    assert lr_scheduler["scheduler"].optimizer is configured["optimizer"]
    if scheduler == "cosine":
        assert lr_scheduler["scheduler"].T_max == 7
    else:
        assert lr_scheduler["monitor"] == "val/loss"
