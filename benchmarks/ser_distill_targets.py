"""What a clean-speech teacher can teach a noisy-input SER student (issue 17, Mitra et al.).

On the ``ser_distill`` recipe's fixed validation windows (valid speakers, mixed as training mixes
them, the same windows that pick each run's best checkpoint) it prints, for the teacher hearing the
clean target window and hearing the mixed one: UA, and how soft its targets are at the recipe's
temperature (mean probability of its own top class and of the true class). For each student
checkpoint, hearing the mixed window: UA, the two distillation terms against the teacher on the
clean window (KL on the softened logits x T^2 and the pooled-embedding MSE, as in training) and
the share of labels equal to the teacher's. Seconds on one core.

    python benchmarks/ser_distill_targets.py --corpus /work/data/synth \\
        /work/data/runs/distill_base/best /work/data/runs/distill_kd/best
"""
from __future__ import annotations

import argparse
import json
from typing import Dict

import numpy as np
import torch

from emotrt.training.metrics import classification_scores
from emotrt.training.recipe import load_recipe
from emotrt.training.ser import load_ser
from emotrt.training.ser_task import distillation, env_tokens
from emotrt.training.tasks import build_task


def outputs(model, audio: torch.Tensor, batch: Dict) -> Dict[str, torch.Tensor]:
    with torch.no_grad():
        pooled = model.embed(audio, env_tokens(model, batch))
        logits, _ = model.heads(pooled)
    return {"pooled": pooled, "logits": logits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("students", nargs="*", help="student SER checkpoint directories")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--recipe", default="ser_distill")
    parser.add_argument("--teacher", default=None, help="teacher checkpoint (default: the recipe's)")
    args = parser.parse_args()
    overrides = ["data.corpus=" + args.corpus] + (["loss.teacher=" + args.teacher] if args.teacher else [])
    task = build_task(load_recipe(args.recipe, overrides))
    batch, teacher, temperature = task.valid, task.teacher, task.loss_config.temperature
    labels = batch["label"].numpy()
    classes = len(task.labels)
    clean = outputs(teacher, batch["clean"], batch)
    report = {"windows": len(labels), "temperature": temperature}
    for name, audio in (("teacher_clean", batch["clean"]), ("teacher_mixed", batch["audio"])):
        logits = outputs(teacher, audio, batch)["logits"]
        soft = torch.softmax(logits / temperature, -1)
        report[name] = {"ua": classification_scores(labels, logits.argmax(-1).numpy(), classes)["ua"],
                        "soft_top": float(soft.max(-1).values.mean()),
                        "soft_true": float(soft[torch.arange(len(labels)), batch["label"]].mean())}
    for path in args.students:
        student, _ = load_ser(path)
        out = outputs(student.eval(), batch["audio"], batch)
        kl, mse = distillation(out["logits"], out["pooled"], clean["logits"], clean["pooled"], temperature)
        preds = out["logits"].argmax(-1).numpy()
        report[path] = {"ua": classification_scores(labels, preds, classes)["ua"], "distill_kl": float(kl),
                        "distill_mse": float(mse),
                        "agrees_with_teacher_clean": float(np.mean(preds == clean["logits"].argmax(-1).numpy()))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
