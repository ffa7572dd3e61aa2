/* Checkpoints: everything a run needs to continue the same loss sequence.
 *
 * Random draws are counter-based (nn/ob_rng.h), keyed by step and epoch, so
 * the step counter restores every generator; what else is saved is the
 * resolved config, clocks, phase timers, the run log's row counts (rows
 * logged after the checkpoint are dropped on resume) and named tensors
 * (parameters, buffers, optimizer state). The file is written to a
 * temporary name and renamed, and carries a CRC-32, so a checkpoint is
 * either complete or rejected. */
#ifndef OB_CHECKPOINT_H
#define OB_CHECKPOINT_H

#include "harness/ob_clock.h"
#include "harness/ob_h5log.h"
#include "nn/ob_tensor.h"

typedef struct {
    int64_t step; /* updates done */
    int world_size; /* ranks of the run that wrote it; a resume must have as many */
    double train_s, eval_s, init_s, wall_s;
    ob_h5log_counts log_counts;
    ob_phase_timers timers;
} ob_checkpoint_state;

typedef struct {
    const char *name;
    ob_tensor *tensor;
} ob_checkpoint_tensor;

/* Tensors that differ between ranks (K-FAC state, batch-norm statistics
 * kept per rank, loss-scaler state) are stored once per rank, named
 * "rank<r>/<name>"; every other tensor is the same on all ranks and stored
 * once, by rank 0. */
void ob_checkpoint_rank_name(char *out, size_t out_len, int rank, const char *name);

int ob_checkpoint_save(const char *path, const char *config_ini, const ob_checkpoint_state *state,
                       const ob_checkpoint_tensor *tensors, int n_tensors, char *err, size_t err_len);
/* The resolved config stored in a checkpoint (malloc'd INI text). */
int ob_checkpoint_read_config(const char *path, char **config_ini, char *err, size_t err_len);
/* Returns 0 when the checkpoint was written by a run of world_size ranks,
 * or 2 with one line saying how many it needs (checked before anything
 * else of a resumed run, whose options only make sense at that size). */
int ob_checkpoint_check_world(const char *path, int world_size, char *err, size_t err_len);
/* Restores state and every listed tensor (matched by name; dtype and size
 * must agree) for `rank` of a run of world_size ranks, skipping the tensors
 * stored for other ranks. Returns 0, or 2 with one line naming the file
 * and problem (another world size included). */
int ob_checkpoint_load(const char *path, int rank, int world_size, ob_checkpoint_state *state,
                       const ob_checkpoint_tensor *tensors, int n_tensors, char *err, size_t err_len);
/* Copies only the listed tensors (a model's parameters and buffers) from a
 * checkpoint of any run and world size, by name; a tensor stored per rank
 * comes from rank 0's copy; everything else in the file (optimizer and
 * K-FAC state, clocks, config) is left: a run that starts from another
 * run's weights (BERT phase 2 from phase 1). Returns 0, or 2 with one line
 * when the file is bad or a listed tensor is missing or of another dtype
 * or size. */
int ob_checkpoint_load_weights(const char *path, const ob_checkpoint_tensor *tensors, int n_tensors, char *err,
                               size_t err_len);

#endif
