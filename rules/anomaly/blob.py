"""Blob: a fitted model as a self-checking JSON document, and back.

    {"digest": sha256 of the canonical "model" text,
     "model": {"format": "homecare-anomaly-model/1", "kind": ..., "version": ...,
               "info": {...}, "body": {...detector's numbers...}}}

JSON, not pickle: unpickling runs code, and a model is stored in the database where whoever
can write a row could otherwise run code in the rules worker. The digest catches a truncated
or altered blob (a flipped digit in a coefficient would otherwise score silently wrong); the
format, kind and version catch a model from another detector or release. Arrays are lists of
finite floats (JSON has no NaN), checked for shape by the detector that reads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from homecare.rules.anomaly._errors import CorruptModel, IncompatibleModel
from homecare.rules.anomaly.contract import ModelInfo, Scope

__all__ = ["FORMAT", "array", "canonical", "decode", "encode", "model_id", "strings"]

FORMAT = "homecare-anomaly-model/1"


def canonical(document: Mapping[str, Any]) -> bytes:
    """canonical: one byte string per document (sorted keys, no spaces, no NaN)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def model_id(kind: str, version: int, body: Mapping[str, Any]) -> str:
    """model_id: the digest of a fitted model's numbers — same history, same id."""
    return hashlib.sha256(canonical({"kind": kind, "version": version, "body": body})).hexdigest()[
        :16
    ]


def encode(info: ModelInfo, body: Mapping[str, Any]) -> bytes:
    """encode: the model document with its digest."""
    model = {
        "format": FORMAT,
        "kind": info.kind,
        "version": info.version,
        "info": {
            "scope": info.scope,
            "model_id": info.model_id,
            "trained_from": info.trained_from.isoformat(),
            "trained_until": info.trained_until.isoformat(),
            "instants": info.instants,
        },
        "body": body,
    }
    text = canonical(model)
    return canonical({"digest": hashlib.sha256(text).hexdigest(), "model": model})


def decode(blob: bytes, kind: str, version: int) -> tuple[ModelInfo, dict[str, Any]]:
    """decode: the model's identity and body, or CorruptModel / IncompatibleModel."""
    try:
        document = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, TypeError) as error:
        raise CorruptModel(f"not a model document: {type(error).__name__}") from None
    if not isinstance(document, dict) or set(document) != {"digest", "model"}:
        raise CorruptModel("not a model document: expected exactly 'digest' and 'model'")
    model = document["model"]
    if not isinstance(model, dict):
        raise CorruptModel("not a model document: 'model' is not an object")
    try:
        text = canonical(model)
    except ValueError:
        raise CorruptModel("model holds a non-finite number") from None
    if hashlib.sha256(text).hexdigest() != document["digest"]:
        raise CorruptModel("digest mismatch: the model was altered or truncated")
    if model.get("format") != FORMAT:
        raise IncompatibleModel(f"format {model.get('format')!r}, expected {FORMAT!r}")
    if model.get("kind") != kind or model.get("version") != version:
        raise IncompatibleModel(
            f"model of kind {model.get('kind')!r} version {model.get('version')!r},"
            f" expected {kind!r} version {version}"
        )
    try:
        raw = model["info"]
        scope = raw["scope"]
        if scope not in ("personal", "cohort"):
            raise ValueError(scope)
        info = ModelInfo(
            kind,
            version,
            cast(Scope, scope),
            str(raw["model_id"]),
            datetime.fromisoformat(raw["trained_from"]),
            datetime.fromisoformat(raw["trained_until"]),
            int(raw["instants"]),
        )
        body = model["body"]
        if not isinstance(body, dict):
            raise TypeError("body")
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptModel(f"model document lacks a valid {error}") from None
    if model_id(kind, version, body) != info.model_id:
        raise CorruptModel("model id does not match the model's numbers")
    return info, body


def array(body: Mapping[str, Any], name: str, shape: Sequence[int]) -> npt.NDArray[np.float64]:
    """array: ``body[name]`` as a float array of exactly ``shape``, or CorruptModel."""
    try:
        values = np.array(body[name], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise CorruptModel(f"model lacks a numeric array {name!r}") from None
    if values.shape != tuple(shape) or not np.all(np.isfinite(values)):
        raise CorruptModel(f"array {name!r} has shape {values.shape}, expected {tuple(shape)}")
    return values


def strings(body: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """strings: ``body[name]`` as a tuple of strings, or CorruptModel."""
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CorruptModel(f"model lacks a list of names {name!r}")
    return tuple(value)
