"""What the PyTorch peers of the end-to-end benchmarks share: the torch
thread and seed setup, and the timed training loop."""
import time

import torch


def setup_torch(threads, seed):
    """Intra-op threads as optbench's context; one inter-op thread."""
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(seed)


def time_training_steps(loss_of_batch, opt, warmup, steps):
    """Wall and process CPU seconds (two lists) of each of `steps` full steps
    (zero grads, forward + loss, backward, update) after `warmup` untimed
    ones."""

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_of_batch()
        loss.backward()
        opt.step()
        return loss.item()  # .item() also makes sure the step has finished

    for _ in range(warmup):
        step()
    times, cpu_times = [], []
    for _ in range(steps):
        t0, cpu0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - cpu0)
    return times, cpu_times
