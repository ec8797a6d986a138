# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Submit evaluation jobs (scripts/slurm/evaluate.slurm) for a model, one per task, as Open R1's run_benchmarks.

python scripts/run_benchmarks.py --model_id org/model --model_revision main --benchmarks math safety gpqa
python scripts/run_benchmarks.py --list_benchmarks

Every option also takes Open R1's spelling with dashes (`--model-id`), as its HfArgumentParser does.
"""

import argparse

from open_r1.eval.run import TASK_GROUPS, submit_evaluation_jobs
from open_r1.eval.tasks import TASKS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_id", "--model-id", help="Hub id or shared-filesystem path of the model.")
    parser.add_argument("--model_revision", "--model-revision", default="main")
    parser.add_argument("--benchmarks", nargs="+", default=["all"], help="Tasks or groups, or `all`.")
    parser.add_argument("--num_gpus", "--num-gpus", type=int, default=8)
    parser.add_argument("--parallel", choices=["data", "tensor"], default="data")
    parser.add_argument(
        "--list_benchmarks", "--list-benchmarks", action="store_true", help="List the tasks and groups, then exit."
    )
    parser.add_argument(
        "--dry_run", "--dry-run", action="store_true", help="Print the sbatch commands without submitting."
    )
    args = parser.parse_args(argv)
    if args.list_benchmarks:
        print("Tasks:", ", ".join(TASKS))
        print("Groups:", "; ".join(f"{group} = {', '.join(tasks)}" for group, tasks in TASK_GROUPS.items()))
        return 0
    if not args.model_id:
        parser.error("--model_id is required")
    try:
        submit_evaluation_jobs(
            args.model_id,
            args.benchmarks,
            args.model_revision,
            dry_run=args.dry_run,
            num_gpus=args.num_gpus,
            parallel=args.parallel,
        )
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
