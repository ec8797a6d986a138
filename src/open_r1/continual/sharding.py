# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Access to the part of each parameter this rank owns, under DDP, DeepSpeed ZeRO-1/2/3 and FSDP2.

Methods that keep per-parameter state (EMA shadows, EWC anchors and Fisher) keep it for the local part only, so
nothing is ever gathered: a full replica under DDP and ZeRO-1/2, the rank's partition under ZeRO-3
(`param.ds_tensor`) and FSDP2 (the local shard of a `DTensor`).
"""

import math

import torch


def local_tensor(param: torch.Tensor) -> torch.Tensor:
    """The tensor holding this rank's part of `param` (shares storage: writing to it updates the model)."""
    if hasattr(param, "ds_tensor"):  # DeepSpeed ZeRO-3 partitioned parameter
        return param.ds_tensor
    if hasattr(param, "to_local"):  # DTensor (FSDP2)
        return param.to_local()
    return param.data


def is_sharded(trainer) -> bool:
    """Whether parameters are partitioned across ranks (ZeRO-3 or FSDP), so per-parameter state is per rank."""
    if trainer.is_fsdp_enabled:
        return True
    if trainer.is_deepspeed_enabled:
        return trainer.accelerator.state.deepspeed_plugin.zero_stage == 3
    return False


def local_fp32_param(param: torch.Tensor) -> torch.Tensor:
    """This rank's part of `param` in fp32, flat: the optimizer's fp32 master partition under ZeRO-3."""
    if hasattr(param, "ds_id"):
        from deepspeed.utils import safe_get_local_fp32_param

        return safe_get_local_fp32_param(param).flatten()
    return local_tensor(param).float().flatten()


def local_row_range(param: torch.Tensor) -> tuple[int, int] | None:
    """[first, end): the rows (dim 0) of the full `param` that this rank's part holds any element of, or None when the
    rank holds it whole. Per-sample gradients need only these rows (1/W of each parameter on W ranks)."""
    if hasattr(param, "ds_id"):  # ZeRO-3: a contiguous range of the flattened parameter, zero-padded at the end
        import torch.distributed as dist

        shape = tuple(param.ds_shape)
        if not shape:
            return None
        row = math.prod(shape[1:])
        size = param.ds_tensor.ds_numel
        start = size * dist.get_rank(group=param.ds_process_group)
        return min(start // row, shape[0]), min(-(-(start + size) // row), shape[0])
    if hasattr(param, "device_mesh"):  # FSDP2 DTensor, sharded on dim 0 as torch.chunk cuts it
        mesh, rows = param.device_mesh, param.shape[0]
        per_rank = -(-rows // mesh.size())
        first = min(mesh.get_local_rank() * per_rank, rows)
        return first, min(first + per_rank, rows)
    return None


def local_part_of_rows(param: torch.Tensor, rows: torch.Tensor, first_row: int = 0) -> torch.Tensor:
    """(count, local numel): the part of each of `count` tensors that this rank holds of `param`, flat, laid out as
    `local_fp32_param(param)`. `rows` is shaped (count, k, *full shape[1:]) and holds rows first_row .. first_row + k
    of each full tensor: all of them, or at least `local_row_range(param)`."""
    count = rows.shape[0]
    if hasattr(param, "ds_id"):
        import torch.distributed as dist

        size = param.ds_tensor.ds_numel
        offset = size * dist.get_rank(group=param.ds_process_group) - first_row * math.prod(rows.shape[2:])
        part = rows.reshape(count, -1)[:, offset : offset + size]
        return torch.nn.functional.pad(part, (0, size - part.shape[1]))
    if hasattr(param, "device_mesh"):
        first, end = local_row_range(param)
        return rows[:, first - first_row : end - first_row].reshape(count, -1)
    return rows.reshape(count, -1)


def local_grad(param: torch.Tensor) -> torch.Tensor | None:
    """This rank's part of `param`'s gradient, flat (after the data-parallel reduction), or None."""
    if hasattr(param, "ds_id"):
        from deepspeed.utils import safe_get_local_grad

        return safe_get_local_grad(param).flatten()
    return None if param.grad is None else _grad_shard(param).flatten()


def add_to_local_grad(param: torch.Tensor, value: torch.Tensor, alpha: float = 1.0) -> None:
    """grad += alpha * value on this rank's part of the gradient (`value` flat, in fp32)."""
    if hasattr(param, "ds_id"):
        from deepspeed.utils import safe_set_local_grad

        grad = local_grad(param)
        safe_set_local_grad(param, grad.add_(value.to(grad), alpha=alpha))
        return
    if param.grad is None:  # a parameter this step's loss did not reach still gets the added term
        param.grad = torch.zeros_like(param)
    grad = _grad_shard(param)
    grad.add_(value.view_as(grad), alpha=alpha)


def _grad_shard(param: torch.Tensor) -> torch.Tensor:
    """`param.grad`, or its local shard when it is a DTensor (FSDP2); shares storage with the gradient."""
    return param.grad.to_local() if hasattr(param.grad, "to_local") else param.grad


# The most elements one group of `foreach_groups` spans: its temporaries (one fp32 tensor per member) stay under
# 64 MiB beside the parameters, where one multi-tensor kernel over every parameter would need a whole fp32 copy.
FOREACH_GROUP_NUMEL = 1 << 24


def is_plain_fp32(param: torch.Tensor, *state: torch.Tensor) -> bool:
    """Whether `param` is a whole contiguous fp32 tensor on this rank (not a ZeRO-3 or FSDP2 partition) whose
    gradient, if any, is fp32 too, and `state` (per-parameter tensors: Fisher, anchors, EMA shadow) are fp32 on the
    same device with as many elements: what the multi-tensor (`torch._foreach_*`) paths need."""
    if hasattr(param, "ds_id") or hasattr(param, "device_mesh") or param.dtype != torch.float32:
        return False
    if not param.is_contiguous() or (param.grad is not None and param.grad.dtype != torch.float32):
        return False
    return all(
        t.dtype == torch.float32 and t.device == param.device and t.numel() == param.numel() and t.is_contiguous()
        for t in state
    )


def split_plain_fp32(rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """`rows` (a parameter's local part, then its per-parameter state tensors) split, in order, into those the
    multi-tensor paths take (`is_plain_fp32`) and the others, which go one parameter at a time."""
    plain, others = [], []
    for row in rows:
        (plain if is_plain_fp32(*row) else others).append(row)
    return plain, others


def foreach_groups(rows: list[tuple], max_numel: int | None = None):
    """`rows` (tuples whose first member is a tensor) cut into consecutive groups of at most `max_numel` elements of
    that first member (a row larger than that is a group alone), each group as a tuple of columns."""
    max_numel = max_numel or FOREACH_GROUP_NUMEL
    group, numel = [], 0
    for row in rows:
        if group and numel + row[0].numel() > max_numel:
            yield tuple(zip(*group))
            group, numel = [], 0
        group.append(row)
        numel += row[0].numel()
    if group:
        yield tuple(zip(*group))


@torch.no_grad()
def token_mean_over_ranks(grads: list[torch.Tensor], tokens: int) -> int:
    """`grads` hold this rank's gradient of its loss summed over its `tokens` labelled tokens; in place they become
    the gradient of the mean over every rank's tokens, as one process at the global batch would take it. For a
    gradient a method takes through the unwrapped model, which no DDP hook reduces: DDP's plain average of per-rank
    means would weight ranks alike, and one rank's batch without a labelled token (a 0/0 mean) would turn every
    replica's gradient into NaN. One all-reduce per group of at most `FOREACH_GROUP_NUMEL` elements of one dtype.
    Returns the tokens over all ranks (0: the gradients are left at zero)."""
    import torch.distributed as dist

    total = tokens
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        count = torch.tensor([float(tokens)], device=grads[0].device if grads else "cpu")
        dist.all_reduce(count)
        total = int(count.item())
        by_dtype: dict[torch.dtype, list[tuple[torch.Tensor]]] = {}
        for grad in grads:
            by_dtype.setdefault(grad.dtype, []).append((grad,))
        for rows in by_dtype.values():
            for (group,) in foreach_groups(rows):
                flat = torch.cat([t.flatten() for t in group])
                dist.all_reduce(flat)
                for grad, summed in zip(group, flat.split([t.numel() for t in group])):
                    grad.copy_(summed.view_as(grad))
    if total:
        torch._foreach_div_(grads, float(total))
    return total


def is_zero3(trainer) -> bool:
    return trainer.is_deepspeed_enabled and trainer.accelerator.state.deepspeed_plugin.zero_stage == 3


def trainable_named_parameters(model) -> list[tuple[str, torch.Tensor]]:
    return [(name, param) for name, param in model.named_parameters() if param.requires_grad]


def local_trainable_parameters(model) -> list[tuple[str, torch.Tensor]]:
    """(name, this rank's part) of each trainable parameter (`local_tensor`: writing to it updates the model)."""
    return [(name, local_tensor(param)) for name, param in trainable_named_parameters(model)]
