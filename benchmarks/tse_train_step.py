"""Training-step rate of a TSE preset on random audio (one process, one thread by default).

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 \
        python benchmarks/tse_train_step.py --preset edge --batch 8 --seconds 1 --enroll-seconds 1.5 --steps 10

Prints steps/s and seconds of audio trained per second; the first two steps are warm-up.
"""
import argparse
import time

import torch

from emotrt.training.losses import align, neg_si_snr
from emotrt.training.tse import TSE, count_parameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="edge")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--enroll-seconds", type=float, default=1.5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = TSE.from_config(args.preset)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    samples = int(args.seconds * model.config.sample_rate)
    mix, target = torch.randn(args.batch, samples), torch.randn(args.batch, samples)
    enrollment = torch.randn(args.batch, int(args.enroll_seconds * model.config.sample_rate))
    times = []
    for _ in range(args.steps + 2):
        start = time.perf_counter()
        estimate = model(mix, model.enroll(enrollment))
        loss = neg_si_snr(*align(estimate, target, model.config.latency_samples))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    rate = args.steps / sum(times[2:])
    print("{} ({:.2f} M params, {} KB state): {:.2f} steps/s, {:.1f} s of audio per s (batch {} x {} s, {} thread(s))".format(
        args.preset, count_parameters(model) / 1e6, model.state_bytes() // 1000, rate, rate * args.batch * args.seconds,
        args.batch, args.seconds, args.threads))


if __name__ == "__main__":
    main()
