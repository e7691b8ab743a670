import pytest
import torch
from hydra.utils import instantiate

from colorlab.errors import ColorlabError
from colorlab.inference import load_colorizer
from colorlab.models import Backbone, ColorizerBase, backbone_encoder, baseline, global_fusion, unet
from colorlab.models.backbone import stage_nodes
from colorlab.train import train
from colorlab.training.callbacks import BackboneThaw
from colorlab.training.module import ColorizationModule
from conftest import REPO, TINY, colourful, compose_train

BUILDERS = {
    "baseline": lambda: baseline(),
    "vgg16": lambda: backbone_encoder("vgg16", pretrained=False),
    "vgg16_fusion": lambda: global_fusion("vgg16", pretrained=False),
    "fusion resnet18": lambda: global_fusion("resnet18", pretrained=False),
    "unet": lambda: unet(),
    "unet resnet18": lambda: unet("resnet18", pretrained=False),
    "unet convnext_tiny pixel_shuffle": lambda: unet(
        "convnext_tiny", pretrained=False, upsampling="pixel_shuffle"
    ),
    "unet efficientnet_b0 bilinear": lambda: unet(
        "efficientnet_b0", pretrained=False, upsampling="bilinear"
    ),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_maps_L_to_ab_at_native_size_and_64(name):
    net = BUILDERS[name]()
    assert isinstance(net, ColorizerBase)
    for size in (net.native_size, 64):
        L = torch.rand(2, 1, size, size) * 100
        with torch.no_grad():
            ab = net(L)
        assert ab.shape == (2, 2, size, size)
        assert ab.abs().max() < 1.0


def test_native_sizes_are_the_references():
    assert baseline().native_size == 256
    assert backbone_encoder("vgg16", pretrained=False).native_size == 224


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


# -- backbones -------------------------------------------------------------------------------
def test_stages_are_block_outputs_at_each_stride():
    # Not nodes inside a residual block or one inception branch: what every path goes through.
    assert stage_nodes("resnet50") == (
        ("relu", 2, 64),
        ("layer1.2.relu_2", 4, 256),
        ("layer2.3.relu_2", 8, 512),
        ("layer3.5.relu_2", 16, 1024),
        ("layer4.2.relu_2", 32, 2048),
    )
    assert stage_nodes("vgg16")[-1] == ("features.30", 32, 512)  # pool5, as the reference
    assert [n for n, _, _ in stage_nodes("inception_v3")][2:] == [
        "Mixed_5d.cat",
        "Mixed_6e.cat",
        "Mixed_7c.cat_2",
    ]
    assert [s for _, s, _ in stage_nodes("convnext_tiny")] == [4, 8, 16, 32]


def test_backbone_maps_the_srgb_gray_of_L_with_the_weights_normalisation():
    backbone = Backbone("resnet18", pretrained=False, output="stages")
    assert backbone.strides == [2, 4, 8, 16, 32] and backbone.channels == [64, 64, 128, 256, 512]
    maps = backbone(torch.rand(2, 1, 64, 64) * 100)
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 4, 2]
    assert torch.allclose(backbone.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    # L = 50 is sRGB gray 0.466 (not L/100 = 0.5): the network sees the picture a camera makes.
    seen = []
    backbone.body.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    backbone(torch.full((1, 1, 32, 32), 50.0))
    assert torch.allclose(
        seen[0][0, :, 0, 0] * backbone.std.flatten() + backbone.mean.flatten(),
        torch.tensor(0.4663),
        atol=1e-3,
    )


def test_unknown_or_tokenising_backbones_are_one_line_errors():
    with pytest.raises(
        ColorlabError, match="backbone='resnet9' is not a torchvision classification network"
    ):
        unet("resnet9")
    with pytest.raises(
        ColorlabError, match="backbone='vit_b_16' has no convolutional feature maps"
    ):
        unet("vit_b_16", pretrained=False)
    with pytest.raises(ColorlabError, match="freeze_backbone='yes' is not allowed"):
        unet("resnet18", pretrained=False, freeze_backbone="yes")
    with pytest.raises(ColorlabError, match="upsampling='cubic' is not allowed"):
        unet(upsampling="cubic")


def _module(model: dict, optimizer_extra: dict | None = None) -> ColorizationModule:
    return ColorizationModule(
        model=model,
        loss={"_target_": "colorlab.losses.RegressionLoss"},
        optimizer={
            "_target_": "torch.optim.Adam",
            "_partial_": True,
            "lr": 1e-3,
            **(optimizer_extra or {}),
        },
    )


def _step(module: ColorizationModule, optimizer) -> None:
    L = torch.rand(2, 1, 64, 64) * 100
    ab = torch.rand(2, 2, 64, 64) * 2 - 1
    optimizer.zero_grad()
    module.loss_fn(module.net(L), {"L": L, "ab": ab}).backward()
    optimizer.step()


@pytest.mark.parametrize(
    "model",
    [
        {"_target_": "colorlab.models.backbone_encoder", "backbone": "vgg16", "pretrained": False},
        {"_target_": "colorlab.models.global_fusion", "backbone": "vgg16", "pretrained": False},
        {"_target_": "colorlab.models.unet", "backbone": "resnet18", "pretrained": False},
    ],
)
def test_a_frozen_backbone_stays_in_eval_mode_and_out_of_the_optimizer(model):
    module = _module(model)
    (backbone,) = module.net.backbones()
    module.train()
    assert not backbone.training and not backbone.body.training
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    optimizer = module.configure_optimizers()
    _step(module, optimizer)
    assert all(p.grad is None for p in backbone.parameters())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in backbone.parameters()}
    assert in_optimizer == {id(p) for p in module.net.parameters() if p.requires_grad}
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())


def test_fine_tuning_thaws_the_backbone_at_its_epoch_with_a_lower_learning_rate():
    model = {
        "_target_": "colorlab.models.unet",
        "backbone": "resnet18",
        "pretrained": False,
        "freeze_backbone": 2,
    }
    module = _module(model, {"backbone_lr_scale": 0.05})
    (backbone,) = module.net.backbones()
    optimizer = module.configure_optimizers()
    lrs = sorted(group["lr"] for group in optimizer.param_groups)
    assert lrs == pytest.approx([5e-5, 1e-3])
    first = next(backbone.parameters())
    before = first.detach().clone()
    module.train()
    _step(module, optimizer)  # epochs 0 and 1: frozen, so Adam skips the group
    assert torch.equal(first, before) and not backbone.body.training
    (thaw,) = [c for c in module.configure_callbacks() if isinstance(c, BackboneThaw)]
    for epoch, thawed in ((1, False), (2, True)):
        thaw.on_train_epoch_start(type("T", (), {"current_epoch": epoch})(), module)
        assert backbone.trainable is thawed
    module.train()
    assert backbone.body.training
    _step(module, optimizer)
    assert not torch.equal(first, before)  # now it learns


# -- every model config: trains, saves, reloads, colorizes -----------------------------------
MODEL_CONFIGS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))


@pytest.mark.parametrize(
    "overrides",
    [[f"model={name}"] for name in MODEL_CONFIGS]
    + [
        ["model=unet", "model.backbone=resnet34"],
        [
            "model=unet",
            "model.backbone=resnet18",
            "model.freeze_backbone=false",
            "loss=classification",
        ],
        ["model=fusion", "model.backbone=efficientnet_b0"],
    ],
    ids=lambda o: " ".join(o),
)
def test_every_model_config_trains_reloads_and_colorizes(tmp_path, overrides):
    extra = ["model.pretrained=false"] if "model=baseline" not in overrides else []
    cfg = compose_train(
        *overrides,
        *extra,
        *TINY,
        "data.image_size=64",
        "data.num_images=12",
        "logger=none",
        "test_after_fit=false",
        "~callbacks.samples",
        run_dir=tmp_path,
    )
    assert cfg.model.native_size in (224, 256)
    summary = train(cfg)
    colorizer = load_colorizer(summary["best_checkpoint"], device="cpu")
    out = colorizer.colorize(colourful((93, 71)))
    assert out.size == (93, 71) and out.mode == "RGB"


def test_configs_instantiate_each_model(tmp_path):
    for name in MODEL_CONFIGS:
        cfg = compose_train(
            f"model={name}",
            "model.pretrained=false" if name != "baseline" else "seed=1",
            run_dir=tmp_path,
        )
        assert instantiate(cfg.model).native_size == cfg.data.image_size


def test_rejects_wrong_input_shapes():
    net = baseline()
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 1, 60, 64))
    with pytest.raises(ValueError, match="B×1×H×W"):
        net(torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_schedulers_from_config(tmp_path, scheduler):
    from colorlab.configs import plain

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
