/* ob_row_pool: worker threads (pthreads) that run one job at a time, a job
 * being `rows` independent calls task(job, row, worker).
 *
 * ob_row_pool_start returns at once and the workers take rows in the
 * background; ob_row_pool_wait makes the calling thread take rows too until
 * none are left, then waits for the workers' last ones. With 0 workers the
 * caller does every row inside ob_row_pool_wait, so a job's results never
 * depend on the worker count as long as each row writes only its own
 * output. Worker indices are 0 .. workers - 1 for the threads and `workers`
 * for the caller, so a task can keep per-worker scratch. */
#ifndef OB_ROW_POOL_H
#define OB_ROW_POOL_H

#include <stdint.h>

typedef void (*ob_row_task)(void *job, int64_t row, int worker);

typedef struct ob_row_pool ob_row_pool;

/* Returns NULL when the threads or memory cannot be had. */
ob_row_pool *ob_row_pool_new(int workers);
/* Stops taking rows of the running job, waits for those under way, joins
 * the threads. */
void ob_row_pool_free(ob_row_pool *pool);
int ob_row_pool_workers(const ob_row_pool *pool);
/* Starts a job; any earlier job must have been waited for. */
void ob_row_pool_start(ob_row_pool *pool, ob_row_task task, void *job, int64_t rows);
/* Returns once every row of the current job is done (at once if none runs). */
void ob_row_pool_wait(ob_row_pool *pool);
/* Ends the current job early: rows not yet taken are skipped, those under
 * way are waited for. */
void ob_row_pool_cancel(ob_row_pool *pool);

#endif
