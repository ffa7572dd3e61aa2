/* The table of every configuration key (ob_config.h). Order matters: it is the
 * order of ob_config_to_ini() and of help listings, and each section's keys
 * stay together. Defaults are the workstation-scale values; presets replace
 * the ones they care about unless the user set them (ob_config_was_set). */
#include "harness/ob_config.h"

#include <math.h>

/* 2^62 bounds seeds and step budgets: the sum of two such counts still fits in int64. */
#define MAX_COUNT 0x1p62

static const ob_config_key config_keys[] = {
    /* run: what to train and how the run is driven */
    {.key = "run.workload", .type = OB_CFG_ENUM, .default_value = "resnet50", .choices = "resnet50|bert",
     .help = "workload to train (model, dataset and quality metric)"},
    {.key = "run.preset", .type = OB_CFG_ENUM, .default_value = "workstation",
     .choices = "full|workstation|smoke",
     .help = "size preset: full (paper recipe, GPU cluster), workstation (scaled down, minutes on "
             "2 cores), smoke (a few steps, for tests)"},
    {.key = "run.optimizer", .type = OB_CFG_ENUM, .default_value = "sgd", .choices = "sgd|adamw|lamb",
     .help = "base optimizer; its settings (and the schedule's peak learning rate) are the section of "
             "the same name"},
    {.key = "run.precond", .type = OB_CFG_ENUM, .default_value = "none", .choices = "none|kfac|dp-kfac",
     .help = "preconditioner wrapped around the base optimizer: kfac (KAISA), dp-kfac (DP-KFAC); its "
             "settings are the kfac section; none = plain base optimizer"},
    {.key = "run.precision", .type = OB_CFG_ENUM, .default_value = "fp32",
     .choices = "fp32|fp16|bf16|fp8-e5m2|hfp8|fqt",
     .help = "precision policy, emulated exactly on the CPU (GEMM and convolution operands rounded, fp32 "
             "accumulation): fp16, bf16; fp8-e5m2 (E5M2 everywhere, stochastic rounding on gradients, "
             "fp16 master weights); hfp8 (E4M3 forward, E5M2 backward, fp16 master weights); fqt (8-bit "
             "forward, fqt.* gradient quantizers); settings in the precision section"},
    {.key = "run.loss_scale", .type = OB_CFG_STRING, .default_value = "none",
     .help = "loss scaling: none, static:N (constant N), dynamic (GradScaler rules, loss_scale.*), "
             "adaptive (layer-wise, Zhao et al. 2019, loss_scale.*)"},
    {.key = "run.seed", .type = OB_CFG_INT, .default_value = "1", .min = 0, .max = MAX_COUNT,
     .help = "random seed: keys initialisation, shuffling, augmentation and every other random draw"},
    {.key = "run.epochs", .type = OB_CFG_FLOAT, .default_value = "3", .min = 0, .min_exclusive = true,
     .max = 10000,
     .help = "training budget in epochs (fractions allowed); the preset's budget applies unless set"},
    {.key = "run.max_steps", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = MAX_COUNT,
     .help = "training budget in optimizer steps, whichever of this and run.epochs ends first; "
             "0 = no step limit"},
    {.key = "run.target", .type = OB_CFG_FLOAT, .default_value = "0.9", .min = -1e30, .max = 1e30,
     .help = "quality target in the workload metric's units (ResNet-50: top-1 accuracy as a "
             "fraction); reaching it ends the run as converged; the preset's target applies unless set"},
    {.key = "run.threads", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = 1024,
     .help = "CPU threads in the compute pool; 0 = all cores"},
    {.key = "run.out", .type = OB_CFG_STRING, .default_value = "",
     .help = "path of the HDF5 result file; empty = optbench run's default name"},
    {.key = "run.force", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "overwrite an existing result file instead of refusing to start"},
    {.key = "run.batch_size", .type = OB_CFG_INT, .default_value = "128", .min = 1, .max = 1 << 20,
     .help = "global mini-batch size in samples per optimizer step, summed over all ranks"},
    {.key = "run.eval_every", .type = OB_CFG_FLOAT, .default_value = "0.25", .min = 0,
     .min_exclusive = true, .max = INFINITY,
     .help = "evaluation interval in epochs (fractions allowed); time-to-accuracy is only as fine "
             "as this grid"},
    {.key = "run.log_every", .type = OB_CFG_INT, .default_value = "50", .min = 1, .max = INFINITY,
     .help = "training-loss logging interval in optimizer steps"},
    {.key = "run.checkpoint_every", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = INFINITY,
     .help = "checkpoint interval in optimizer steps; 0 = no checkpoints"},
    {.key = "run.checkpoint_path", .type = OB_CFG_STRING, .default_value = "",
     .help = "path of the checkpoint file; empty = optbench run's default path"},
    {.key = "run.init_from", .type = OB_CFG_STRING, .default_value = "",
     .help = "checkpoint whose model parameters and buffers this run starts from (any run, any world "
             "size; BERT phase 2 from phase 1); the optimizer, schedule and step start fresh; empty = the "
             "workload's initialisation"},
    {.key = "run.resume", .type = OB_CFG_STRING, .default_value = "",
     .help = "checkpoint file to resume from (parameters, optimizer state, RNG counters, clocks); "
             "empty = start fresh"},

    /* data: where samples come from and how they are augmented */
    {.key = "data.dir", .type = OB_CFG_STRING, .default_value = "",
     .help = "dataset location; empty = the preset's dataset path, synthetic = random inputs of the "
             "right shapes (throughput runs)"},
    {.key = "data.augment", .type = OB_CFG_BOOL, .default_value = "true",
     .help = "augment training samples at all (master switch for crop and flip)"},
    {.key = "data.crop_padding", .type = OB_CFG_INT, .default_value = "4", .min = 0, .max = 64,
     .help = "random-crop augmentation: padding in pixels added on each side before cropping back"},
    {.key = "data.hflip", .type = OB_CFG_BOOL, .default_value = "true",
     .help = "random horizontal-flip augmentation (probability 1/2)"},
    {.key = "data.workers", .type = OB_CFG_INT, .default_value = "2", .min = 0, .max = 256,
     .help = "ImageNet folder reader: JPEG decoding threads, which also prefetch the next training batch "
             "while the current one trains; 0 = decode on the training thread, no prefetch (batches are "
             "the same for any count)"},
    {.key = "data.eval_resize", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = 65536,
     .help = "ImageNet folder reader: evaluation images are resized to this shorter side, then "
             "centre-cropped to the input size; 0 = input size * 256 / 224 (256 for 224)"},
    {.key = "data.train_limit", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = INFINITY,
     .help = "train on only the first N training samples; 0 = the whole set"},
    {.key = "data.eval_limit", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = INFINITY,
     .help = "evaluate on only the first N evaluation samples; 0 = the whole set"},
    {.key = "data.train_files", .type = OB_CFG_STRING, .default_value = "train_*.h5",
     .help = "BERT: the training shards, a glob pattern in data.dir (an absolute pattern stands alone), "
             "read as one list in sorted order and shuffled every epoch (shard order, then rows within "
             "each shard); NVIDIA/MLPerf shards: e.g. part_*.hdf5"},
    {.key = "data.eval_files", .type = OB_CFG_STRING, .default_value = "eval.h5",
     .help = "BERT: the evaluation shards, a glob pattern in data.dir (an absolute pattern stands alone), "
             "read in sorted order"},
    {.key = "data.seq_len", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = 65536,
     .help = "BERT: tokens per sequence (128 in phase 1, 512 in phase 2); synthetic data is made this "
             "long and shards must be; 0 = synthetic 128, shards any length up to the model's positions"},
    {.key = "data.max_pred", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = 65536,
     .help = "BERT: masked predictions per sequence (20 in phase 1, 80 in phase 2); synthetic data "
             "makes this many and shards must hold this many; 0 = synthetic 20, shards any"},

    /* model: architecture-level training choices */
    {.key = "model.label_smoothing", .type = OB_CFG_FLOAT, .default_value = "0", .min = 0, .max = 1,
     .max_exclusive = true,
     .help = "label smoothing of the cross-entropy loss: fraction of the target mass spread over "
             "all classes"},
    {.key = "model.norm", .type = OB_CFG_ENUM, .default_value = "batch", .choices = "batch|none",
     .help = "normalisation after each convolution: batch (batch-norm) or none (no normalisation "
             "layers, convolutions get a bias instead; the gradient then does not depend on how the "
             "batch is split over ranks; keep model.zero_init_residual on, without it the network "
             "diverges)"},
    {.key = "model.bn_momentum", .type = OB_CFG_FLOAT, .default_value = "0.1", .min = 0, .max = 1,
     .help = "batch-norm running-statistics momentum (PyTorch convention: weight of the new batch)"},
    {.key = "model.bn_eps", .type = OB_CFG_FLOAT, .default_value = "1e-5", .min = 0, .min_exclusive = true,
     .max = INFINITY, .help = "batch-norm epsilon added to the variance"},
    {.key = "model.zero_init_residual", .type = OB_CFG_BOOL, .default_value = "true",
     .help = "start each residual block's last batch-norm scale (model.norm=none: its last "
             "convolution's weight) at 0, so blocks begin as identity"},

    /* schedule: the learning rate over time (optimizers/ob_schedule.h has the formulas) */
    {.key = "schedule.kind", .type = OB_CFG_ENUM, .default_value = "cosine",
     .choices = "constant|step|multistep|cosine|polynomial|onecycle",
     .help = "learning-rate schedule after warm-up"},
    {.key = "schedule.warmup_epochs", .type = OB_CFG_FLOAT, .default_value = "0", .min = 0, .max = 1e6,
     .help = "linear warm-up length in epochs; 0 = none (onecycle requires 0)"},
    {.key = "schedule.step_size", .type = OB_CFG_FLOAT, .default_value = "30", .min = 0,
     .min_exclusive = true, .max = INFINITY,
     .help = "step: epochs between two decays by schedule.gamma"},
    {.key = "schedule.gamma", .type = OB_CFG_FLOAT, .default_value = "0.1", .min = 0, .min_exclusive = true,
     .max = 1, .help = "step and multistep: factor the learning rate is multiplied by at each boundary"},
    {.key = "schedule.milestones", .type = OB_CFG_FLOAT_LIST, .default_value = "", .min = 0, .max = 1e6,
     .help = "multistep: comma-separated epochs at which the learning rate is multiplied by "
             "schedule.gamma"},
    {.key = "schedule.power", .type = OB_CFG_FLOAT, .default_value = "2", .min = 0, .min_exclusive = true,
     .max = INFINITY, .help = "polynomial: exponent of the decay (1 = linear)"},
    {.key = "schedule.min_lr", .type = OB_CFG_FLOAT, .default_value = "0", .min = 0, .max = 1e6,
     .help = "cosine and polynomial: learning rate at the end of the budget"},
    {.key = "schedule.pct_start", .type = OB_CFG_FLOAT, .default_value = "0.3", .min = 0,
     .min_exclusive = true, .max = 1, .max_exclusive = true,
     .help = "onecycle: fraction of the steps spent rising to the peak learning rate"},
    {.key = "schedule.div_factor", .type = OB_CFG_FLOAT, .default_value = "25", .min = 0,
     .min_exclusive = true, .max = INFINITY,
     .help = "onecycle: initial learning rate = peak / div_factor"},
    {.key = "schedule.final_div_factor", .type = OB_CFG_FLOAT, .default_value = "1e4", .min = 0,
     .min_exclusive = true, .max = INFINITY,
     .help = "onecycle: final learning rate = initial / final_div_factor"},

    /* sgd: the SGD optimizer */
    {.key = "sgd.lr", .type = OB_CFG_FLOAT, .default_value = "0.1", .min = 0, .min_exclusive = true,
     .max = 1e3, .help = "peak learning rate (reached after warm-up; the schedule scales it)"},
    {.key = "sgd.momentum", .type = OB_CFG_FLOAT, .default_value = "0.9", .min = 0, .max = 1,
     .max_exclusive = true, .help = "momentum coefficient; 0 = plain SGD"},
    {.key = "sgd.nesterov", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "use Nesterov momentum instead of heavy-ball momentum"},
    {.key = "sgd.weight_decay", .type = OB_CFG_FLOAT, .default_value = "5e-5", .min = 0, .max = 1,
     .help = "weight-decay coefficient: weight_decay * parameter is added to the gradient (L2), "
             "or taken off the weights directly when sgd.decoupled"},
    {.key = "sgd.decoupled", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "decoupled weight decay (SGDW, Loshchilov & Hutter): shrink the weights, not the gradient"},
    {.key = "sgd.decay_norm_and_bias", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "also decay normalisation scales and shifts and biases (default: only weights)"},

    /* adamw: AdamW (optimizers/ob_optimizer.h has the update) */
    {.key = "adamw.lr", .type = OB_CFG_FLOAT, .default_value = "0.001", .min = 0, .min_exclusive = true,
     .max = 1e3, .help = "peak learning rate (reached after warm-up; the schedule scales it)"},
    {.key = "adamw.beta1", .type = OB_CFG_FLOAT, .default_value = "0.9", .min = 0, .max = 1,
     .max_exclusive = true, .help = "decay rate of the first moment (running mean of the gradient)"},
    {.key = "adamw.beta2", .type = OB_CFG_FLOAT, .default_value = "0.999", .min = 0, .max = 1,
     .max_exclusive = true, .help = "decay rate of the second moment (running mean of the squared gradient)"},
    {.key = "adamw.eps", .type = OB_CFG_FLOAT, .default_value = "1e-8", .min = 0, .min_exclusive = true,
     .max = 1, .help = "added to the square root of the second moment"},
    {.key = "adamw.weight_decay", .type = OB_CFG_FLOAT, .default_value = "0.01", .min = 0, .max = 1,
     .help = "decoupled weight decay: the weights shrink by lr * weight_decay each step"},
    {.key = "adamw.decay_norm_and_bias", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "also decay normalisation scales and shifts and biases (default: only weights)"},

    /* lamb: LAMB, You et al. 2020 (optimizers/ob_optimizer.h has the update) */
    {.key = "lamb.lr", .type = OB_CFG_FLOAT, .default_value = "0.001", .min = 0, .min_exclusive = true,
     .max = 1e3, .help = "peak learning rate (reached after warm-up; the schedule scales it)"},
    {.key = "lamb.beta1", .type = OB_CFG_FLOAT, .default_value = "0.9", .min = 0, .max = 1,
     .max_exclusive = true, .help = "decay rate of the first moment (running mean of the gradient)"},
    {.key = "lamb.beta2", .type = OB_CFG_FLOAT, .default_value = "0.999", .min = 0, .max = 1,
     .max_exclusive = true, .help = "decay rate of the second moment (running mean of the squared gradient)"},
    {.key = "lamb.eps", .type = OB_CFG_FLOAT, .default_value = "1e-6", .min = 0, .min_exclusive = true,
     .max = 1, .help = "added to the square root of the second moment (the paper's 1e-6)"},
    {.key = "lamb.weight_decay", .type = OB_CFG_FLOAT, .default_value = "0.01", .min = 0, .max = 1,
     .help = "weight_decay * parameter is added to the Adam direction before the trust ratio scales it"},
    {.key = "lamb.decay_norm_and_bias", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "also decay normalisation scales and shifts and biases and give them a trust ratio (default: "
             "they step like Adam, ratio 1)"},
    {.key = "lamb.max_trust_ratio", .type = OB_CFG_FLOAT, .default_value = "0", .min = 0, .max = 1e6,
     .help = "upper clamp of the trust ratio ||x|| / ||r|| of each parameter tensor; 0 = no clamp (the "
             "paper's identity)"},
    {.key = "lamb.bias_correction", .type = OB_CFG_BOOL, .default_value = "true",
     .help = "divide the moments by 1 - beta^t at step t, as the paper's algorithm does"},

    /* grad: what happens to the averaged gradient before the update */
    {.key = "grad.clip_norm", .type = OB_CFG_FLOAT, .default_value = "0", .min = 0, .max = 1e30,
     .help = "clip by global norm: when the norm of all gradients together exceeds this, scale them by "
             "clip_norm / (norm + 1e-6), before K-FAC and the optimizer; 0 = off (the logged grad_norm is "
             "the norm before clipping)"},

    /* dist: data-parallel training over ranks (mpirun -np N optbench run ...) */
    {.key = "dist.bucket_mb", .type = OB_CFG_FLOAT, .default_value = "25", .min = 0, .min_exclusive = true,
     .max = 1 << 20,
     .help = "gradient all-reduce bucket size in MiB (gradients are packed into buckets of this size, "
             "PyTorch DDP's default is 25)"},
    {.key = "dist.sync_batchnorm", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "synchronized batch-norm: normalise with the statistics of every rank's share of the global "
             "batch (one all-reduce per batch-norm layer in forward and in backward) instead of each "
             "rank's local ones"},

    /* kfac: K-FAC preconditioning (KAISA and DP-KFAC, optimizers/kfac/ob_kfac.h). Keys marked
     * "piecewise" take one value, or n+1 comma-separated values with n epochs in the matching
     * _epochs key at which the next value takes over. */
    {.key = "kfac.method", .type = OB_CFG_ENUM, .default_value = "eigen", .choices = "eigen|inverse",
     .help = "how factors are inverted: eigen-decomposition (damping on d_G d_A^T) or damped Cholesky "
             "inverses"},
    {.key = "kfac.damping", .type = OB_CFG_FLOAT_LIST, .default_value = "0.001", .min = 0,
     .min_exclusive = true, .max = 1e6, .help = "Tikhonov damping lambda (piecewise)"},
    {.key = "kfac.damping_epochs", .type = OB_CFG_FLOAT_LIST, .default_value = "", .min = 0, .max = 1e6,
     .help = "epochs at which kfac.damping moves to its next value"},
    {.key = "kfac.factor_decay", .type = OB_CFG_FLOAT_LIST, .default_value = "0.95", .min = 0, .max = 1,
     .max_exclusive = true,
     .help = "running-average weight of the old factor: F = decay F + (1 - decay) F_batch (piecewise)"},
    {.key = "kfac.factor_decay_epochs", .type = OB_CFG_FLOAT_LIST, .default_value = "", .min = 0,
     .max = 1e6, .help = "epochs at which kfac.factor_decay moves to its next value"},
    {.key = "kfac.factor_update_steps", .type = OB_CFG_FLOAT_LIST, .default_value = "1", .min = 1,
     .max = 1e9, .help = "steps between factor updates (piecewise, whole numbers)"},
    {.key = "kfac.factor_update_steps_epochs", .type = OB_CFG_FLOAT_LIST, .default_value = "", .min = 0,
     .max = 1e6, .help = "epochs at which kfac.factor_update_steps moves to its next value"},
    {.key = "kfac.inv_update_steps", .type = OB_CFG_FLOAT_LIST, .default_value = "1", .min = 1,
     .max = 1e9, .help = "steps between inverse (eigen-decomposition) updates (piecewise, whole numbers)"},
    {.key = "kfac.inv_update_steps_epochs", .type = OB_CFG_FLOAT_LIST, .default_value = "", .min = 0,
     .max = 1e6, .help = "epochs at which kfac.inv_update_steps moves to its next value"},
    {.key = "kfac.kl_clip", .type = OB_CFG_FLOAT, .default_value = "0.001", .min = 0, .max = 1e6,
     .help = "KL clipping: scale preconditioned gradients by min(1, sqrt(kl_clip / |sum v g lr^2|)); "
             "0 = off"},
    {.key = "kfac.kl_clip_lr", .type = OB_CFG_ENUM, .default_value = "scheduled", .choices = "scheduled|peak",
     .help = "the learning rate in the KL-clip term: scheduled (KAISA; a clipped update ignores the schedule) "
             "or peak (the base optimizer's peak rate, so a clipped update shrinks with the schedule)"},
    {.key = "kfac.grad_worker_frac", .type = OB_CFG_FLOAT, .default_value = "1", .min = 0,
     .min_exclusive = true, .max = 1,
     .help = "KAISA: fraction of ranks that hold each layer's inverses and precondition it; 1 = "
             "COMM-OPT, 1/world = MEM-OPT, between = HYBRID-OPT"},
    {.key = "kfac.assignment", .type = OB_CFG_ENUM, .default_value = "compute", .choices = "compute|memory",
     .help = "greedy layer placement balances decomposition compute (n^3) or memory (n^2)"},
    {.key = "kfac.colocate_factors", .type = OB_CFG_BOOL, .default_value = "true",
     .help = "KAISA: decompose a layer's A and G on the same rank"},
    {.key = "kfac.eigen_outer", .type = OB_CFG_BOOL, .default_value = "true",
     .help = "eigen method: precompute 1/(d_G d_A^T + damping) at each inverse update"},
    {.key = "kfac.batch_averaged", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "the loss is a batch mean: multiply output gradients by the local batch size before G is "
             "built (kfac-pytorch v0.3's batch_averaged; G then estimates the per-example Fisher factor)"},
    {.key = "kfac.decay_warmup", .type = OB_CFG_BOOL, .default_value = "false",
     .help = "the k-th factor update averages with weight min(1 - 1/k, factor_decay) on the old factor "
             "(Martens & Grosse 2015): the first replaces the identity; off = KAISA's factor_decay throughout"},
    {.key = "kfac.symmetric_comm", .type = OB_CFG_BOOL, .default_value = "true",
     .help = "all-reduce only the upper triangle of each (symmetric) factor"},
    {.key = "kfac.skip_layers", .type = OB_CFG_STRING, .default_value = "",
     .help = "comma-separated name patterns (fnmatch, e.g. fc,layer1.*) of layers K-FAC leaves alone"},
    {.key = "kfac.factor_dtype", .type = OB_CFG_ENUM, .default_value = "fp32", .choices = "fp32|fp16|bf16",
     .help = "what the running factors A and G are kept in: fp16 or bf16 halve their memory (rounded to "
             "nearest even after each update, computed in fp32); CPU only"},
    {.key = "kfac.inv_dtype", .type = OB_CFG_ENUM, .default_value = "fp32", .choices = "fp32|fp16|bf16",
     .help = "what the inverses (eigen: Q, d and the outer divisor) are kept and broadcast in: fp16 or bf16 "
             "halve their memory and their broadcasts; CPU only"},

    /* precision: the policy of run.precision (optimizers/precision/ob_precision.h) */
    {.key = "precision.exempt", .type = OB_CFG_STRING, .default_value = "auto",
     .help = "comma-separated name patterns (fnmatch) of Linear/Conv2d layers kept in fp32; auto = the "
             "first and the last such layer for fp8-e5m2, hfp8 and fqt, none for fp16 and bf16; none = "
             "no exemptions"},
    {.key = "precision.grad_rounding", .type = OB_CFG_ENUM, .default_value = "auto",
     .choices = "auto|nearest|stochastic",
     .help = "rounding of gradients to the backward format; auto = stochastic for fp8-e5m2, nearest-even "
             "otherwise"},
    {.key = "precision.master", .type = OB_CFG_ENUM, .default_value = "auto", .choices = "auto|fp32|fp16",
     .help = "master weights: fp16 rounds every parameter to binary16 with stochastic rounding after each "
             "update; auto = fp16 for fp8-e5m2 and hfp8, fp32 otherwise"},
    {.key = "precision.saved_inputs", .type = OB_CFG_ENUM, .default_value = "format", .choices = "format|fp32",
     .help = "what a Linear/Conv2d keeps of its rounded input for backward: format = 2 bytes (binary16 for "
             "fp16, fp8-e5m2 and hfp8, bfloat16 for bf16; exact, the same values), fp32 = 4 bytes; fqt and "
             "K-FAC's captured layers always keep fp32"},
    {.key = "precision.log_every", .type = OB_CFG_INT, .default_value = "50", .min = 1, .max = INFINITY,
     .help = "steps between rows of per-layer loss scale and gradient underflow/overflow fractions in "
             "/precision"},

    /* loss_scale: settings of run.loss_scale */
    {.key = "loss_scale.init", .type = OB_CFG_FLOAT, .default_value = "65536", .min = 0,
     .min_exclusive = true, .max = 1e38, .help = "dynamic: initial loss scale (2^16)"},
    {.key = "loss_scale.growth_factor", .type = OB_CFG_FLOAT, .default_value = "2", .min = 1,
     .min_exclusive = true, .max = 1e6, .help = "dynamic: factor applied after loss_scale.growth_interval clean steps"},
    {.key = "loss_scale.backoff_factor", .type = OB_CFG_FLOAT, .default_value = "0.5", .min = 0,
     .min_exclusive = true, .max = 1, .max_exclusive = true,
     .help = "dynamic: factor applied after a step with inf/NaN gradients (that step is skipped)"},
    {.key = "loss_scale.growth_interval", .type = OB_CFG_INT, .default_value = "2000", .min = 1, .max = MAX_COUNT,
     .help = "dynamic: consecutive clean steps before the scale grows"},
    {.key = "loss_scale.underflow_rate", .type = OB_CFG_FLOAT, .default_value = "0.001", .min = 0,
     .min_exclusive = true, .max = 1, .max_exclusive = true,
     .help = "adaptive (approx_range): fraction of a layer's gradient values allowed to fall below the "
             "format's smallest subnormal"},
    {.key = "loss_scale.max_layer", .type = OB_CFG_FLOAT, .default_value = "16", .min = 1, .max = 1e30,
     .help = "adaptive: largest scale one layer may add"},
    {.key = "loss_scale.max_total", .type = OB_CFG_FLOAT, .default_value = "1024", .min = 1, .max = 1e30,
     .help = "adaptive: largest accumulated scale of any gradient"},
    {.key = "loss_scale.update_every", .type = OB_CFG_INT, .default_value = "1", .min = 1, .max = MAX_COUNT,
     .help = "adaptive: steps between recomputations of the per-layer scales (kept in between)"},

    /* fqt: fully quantized training (Chen et al. 2020), run.precision = fqt */
    {.key = "fqt.forward_bits", .type = OB_CFG_INT, .default_value = "8", .min = 2, .max = 16,
     .help = "bits of the per-tensor forward quantization of weights and activations"},
    {.key = "fqt.bits", .type = OB_CFG_INT, .default_value = "8", .min = 1, .max = 16,
     .help = "bits of the stochastic quantizer on the activation-gradient path (the gradient passed down)"},
    {.key = "fqt.weight_grad_bits", .type = OB_CFG_INT, .default_value = "8", .min = 1, .max = 16,
     .help = "bits of the stochastic quantizer on the weight-gradient path"},
    {.key = "fqt.quantizer", .type = OB_CFG_ENUM, .default_value = "bhq", .choices = "ptq|psq|bhq",
     .help = "gradient quantizer: per-tensor (ptq), per-sample (psq) or block Householder (bhq) ranges"},

    /* debug: test aids, off by default */
    {.key = "debug.kill_at_step", .type = OB_CFG_INT, .default_value = "0", .min = 0, .max = INFINITY,
     .help = "test aid: the run SIGKILLs itself right after this optimizer step, to test resuming; "
             "0 = off"},
};

const ob_config_key *ob_config_keys(int *count) {
    if (count)
        *count = (int)(sizeof config_keys / sizeof config_keys[0]);
    return config_keys;
}
