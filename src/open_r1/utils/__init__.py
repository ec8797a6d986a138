from .data import get_dataset
from .model_utils import get_model, get_tokenizer


__all__ = ["get_dataset", "get_model", "get_tokenizer"]
