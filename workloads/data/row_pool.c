#include "workloads/data/ob_row_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct {
    ob_row_pool *pool;
    int index;
} worker_arg;

struct ob_row_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_ready, job_done; /* rows to take; the last row finished */
    ob_row_task task;
    void *job;
    int64_t rows, rows_taken, rows_done; /* of the current job, under lock */
    bool stopping;
    int workers, started; /* threads asked for, threads running */
    pthread_t *threads;
    worker_arg *args;
};

/* Takes the next row of the current job and runs it outside the lock.
 * Called and returns with the lock held; false when no row is left. */
static bool run_one_row(ob_row_pool *pool, int worker) {
    if (!pool->task || pool->rows_taken >= pool->rows) return false;
    int64_t row = pool->rows_taken++;
    ob_row_task task = pool->task;
    void *job = pool->job;
    pthread_mutex_unlock(&pool->lock);
    task(job, row, worker);
    pthread_mutex_lock(&pool->lock);
    if (++pool->rows_done == pool->rows) pthread_cond_broadcast(&pool->job_done);
    return true;
}

static void *worker_main(void *arg) {
    worker_arg *self = arg;
    ob_row_pool *pool = self->pool;
    pthread_mutex_lock(&pool->lock);
    while (!pool->stopping) {
        if (!run_one_row(pool, self->index)) pthread_cond_wait(&pool->work_ready, &pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

ob_row_pool *ob_row_pool_new(int workers) {
    ob_row_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->workers = workers;
    pool->threads = calloc(workers > 0 ? (size_t)workers : 1, sizeof *pool->threads);
    pool->args = calloc(workers > 0 ? (size_t)workers : 1, sizeof *pool->args);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->job_done, NULL);
    bool ok = pool->threads && pool->args;
    for (int i = 0; ok && i < workers; i++) {
        pool->args[i] = (worker_arg){pool, i};
        ok = pthread_create(&pool->threads[i], NULL, worker_main, &pool->args[i]) == 0;
        pool->started += ok;
    }
    if (!ok) {
        ob_row_pool_free(pool);
        return NULL;
    }
    return pool;
}

void ob_row_pool_free(ob_row_pool *pool) {
    if (!pool) return;
    ob_row_pool_cancel(pool);
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->started; i++) pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->job_done);
    pthread_cond_destroy(&pool->work_ready);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool->args);
    free(pool);
}

int ob_row_pool_workers(const ob_row_pool *pool) { return pool->workers; }

void ob_row_pool_start(ob_row_pool *pool, ob_row_task task, void *job, int64_t rows) {
    pthread_mutex_lock(&pool->lock);
    pool->task = task;
    pool->job = job;
    pool->rows = rows;
    pool->rows_taken = pool->rows_done = 0;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
}

/* Called with the lock held: waits for the rows under way and clears the job. */
static void finish_job(ob_row_pool *pool) {
    while (pool->task && pool->rows_done < pool->rows) pthread_cond_wait(&pool->job_done, &pool->lock);
    pool->task = NULL;
    pool->job = NULL;
}

void ob_row_pool_wait(ob_row_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    while (run_one_row(pool, pool->workers)) continue;
    finish_job(pool);
    pthread_mutex_unlock(&pool->lock);
}

void ob_row_pool_cancel(ob_row_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    pool->rows = pool->rows_taken;
    finish_job(pool);
    pthread_mutex_unlock(&pool->lock);
}
