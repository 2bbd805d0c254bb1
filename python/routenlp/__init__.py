"""routenlp from Python through its C ABI (ctypes; no compiled extension).

The shared library is found through the ROUTENLP_LIBRARY environment variable (the full
path of libroutenlp.so), else by the system loader ("libroutenlp.so.0"). See docs/python.md.

Every C error becomes a RoutenlpError (subclasses per status) carrying rn_last_error()'s text.
"""
from __future__ import annotations

import ctypes as C
import math
import os
from typing import Callable, Iterable, List, Optional, Sequence

__all__ = [
    "RoutenlpError", "InvalidArgumentError", "IoError", "ParseError", "TierError",
    "TimeoutError_", "CancelledError", "library", "version", "version_number", "runtime_info",
    "Tokenizer", "Calibrator", "TierReply", "TierRequest", "Tier", "Cascade", "CascadeResult",
    "TraceEntry",
]

# ---- errors ------------------------------------------------------------------------------

class RoutenlpError(Exception):
    """A routenlp C call failed; .status is the rn_status value, str() the library's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class InvalidArgumentError(RoutenlpError, ValueError):
    pass


class IoError(RoutenlpError, OSError):
    pass


class ParseError(RoutenlpError):
    pass


class TierError(RoutenlpError):
    pass


class TimeoutError_(RoutenlpError):
    pass


class CancelledError(RoutenlpError):
    pass


_BY_STATUS = {-1: InvalidArgumentError, -2: IoError, -3: ParseError, -5: TierError,
              -6: TimeoutError_, -7: CancelledError}

RN_OK = 0
RN_ERR_CALLBACK = -10

# ---- library loading -----------------------------------------------------------------------

_lib = None


def library() -> C.CDLL:
    """The loaded shared library (loaded on first use)."""
    global _lib
    if _lib is None:
        path = os.environ.get("ROUTENLP_LIBRARY") or "libroutenlp.so.0"
        _lib = C.CDLL(path)
        _declare(_lib)
    return _lib


def _check(status: int) -> None:
    if status != RN_OK:
        msg = library().rn_last_error().decode("utf-8", "replace")
        name = library().rn_status_name(status).decode()
        raise _BY_STATUS.get(status, RoutenlpError)(status, f"{name}: {msg}")


def _enc(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else s.encode("utf-8")


def _dec(b: Optional[bytes]) -> str:
    return "" if b is None else b.decode("utf-8", "replace")


# ---- C structs -----------------------------------------------------------------------------

class _CalibratorParams(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("method", C.c_int32), ("alpha", C.c_double),
                ("epsilon", C.c_double), ("cell_floor", C.c_uint32),
                ("quality_target_mode", C.c_int32), ("quality_target", C.c_double),
                ("allocation", C.c_int32), ("qt_epsilon", C.c_double)]


class _TierRequest(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("request_id", C.c_char_p), ("query", C.c_char_p),
                ("task", C.c_char_p), ("tier", C.c_int32), ("time_left_ms", C.c_double),
                ("n_previous", C.c_size_t), ("previous_texts", C.POINTER(C.c_char_p)),
                ("previous_tiers", C.POINTER(C.c_int32)), ("internal", C.c_void_p)]


_TierCallFn = C.CFUNCTYPE(C.c_int, C.POINTER(_TierRequest), C.c_void_p, C.c_void_p)
_TierDestroyFn = C.CFUNCTYPE(None, C.c_void_p)


class _TierVtable(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("name", C.c_char_p), ("call", _TierCallFn),
                ("destroy", _TierDestroyFn), ("expected_cost", C.c_double),
                ("user_data", C.c_void_p)]


class _CascadeParams(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("n_threads", C.c_uint32), ("online", C.c_int32),
                ("audit_rate", C.c_double), ("decision_log_path", C.c_char_p)]


class _CascadeRequest(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("request_id", C.c_char_p), ("query", C.c_char_p),
                ("task", C.c_char_p), ("start_tier", C.c_int32), ("max_tier", C.c_int32),
                ("alpha", C.c_double), ("budget_usd", C.c_double), ("deadline_ms", C.c_double)]


class _TraceEntry(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("tier", C.c_int32), ("tier_name", C.c_char_p),
                ("latency_ms", C.c_double), ("cost", C.c_double), ("uncertainty", C.c_double),
                ("delta", C.c_double), ("decision", C.c_int32), ("error_status", C.c_int32),
                ("error_message", C.c_char_p)]


def _declare(lib: C.CDLL) -> None:
    P = C.POINTER
    vp = C.c_void_p
    sigs = {
        "rn_version_number": (C.c_uint32, []),
        "rn_version_string": (C.c_char_p, []),
        "rn_last_error": (C.c_char_p, []),
        "rn_status_name": (C.c_char_p, [C.c_int]),
        "rn_runtime_info_json": (C.c_int, [P(C.c_char_p)]),
        "rn_tokenizer_create_from_vocab": (C.c_int, [P(vp), C.c_char_p]),
        "rn_tokenizer_create_from_json": (C.c_int, [P(vp), C.c_char_p]),
        "rn_tokenizer_destroy": (None, [vp]),
        "rn_tokenizer_encode": (C.c_int, [vp, C.c_char_p, C.c_size_t, C.c_size_t, P(C.c_int32),
                                          C.c_size_t, P(C.c_size_t)]),
        "rn_tokenizer_vocab_size": (C.c_int, [vp, P(C.c_size_t)]),
        "rn_tokenizer_token_to_id": (C.c_int, [vp, C.c_char_p, P(C.c_int32)]),
        "rn_calibrator_params_default": (_CalibratorParams, []),
        "rn_calibrator_create": (C.c_int, [P(vp), P(_CalibratorParams)]),
        "rn_calibrator_calibrate": (C.c_int, [vp, C.c_size_t, C.c_size_t, P(C.c_char_p),
                                              P(C.c_char_p), P(C.c_double), P(C.c_uint8),
                                              P(C.c_double), P(C.c_double)]),
        "rn_calibrator_threshold": (C.c_int, [P(C.c_double), vp, C.c_size_t, C.c_char_p]),
        "rn_calibrator_cell_status": (C.c_int, [P(C.c_int32), vp, C.c_size_t, C.c_char_p]),
        "rn_calibrator_save": (C.c_int, [vp, C.c_char_p]),
        "rn_calibrator_load": (C.c_int, [P(vp), C.c_char_p]),
        "rn_calibrator_destroy": (None, [vp]),
        "rn_tier_request_cancelled": (C.c_int, [P(_TierRequest)]),
        "rn_tier_reply_set_text": (C.c_int, [vp, C.c_char_p]),
        "rn_tier_reply_set_confidence": (C.c_int, [vp, C.c_double]),
        "rn_tier_reply_set_cost": (C.c_int, [vp, C.c_double]),
        "rn_tier_reply_set_latency_ms": (C.c_int, [vp, C.c_double]),
        "rn_tier_reply_set_tokens": (C.c_int, [vp, C.c_int64, C.c_int64]),
        "rn_tier_reply_set_error": (C.c_int, [vp, C.c_char_p]),
        "rn_tier_create": (C.c_int, [P(vp), P(_TierVtable)]),
        "rn_tier_destroy": (None, [vp]),
        "rn_cascade_params_default": (_CascadeParams, []),
        "rn_cascade_create": (C.c_int, [P(vp), P(vp), C.c_size_t, vp, P(_CascadeParams)]),
        "rn_cascade_run": (C.c_int, [P(vp), vp, P(_CascadeRequest)]),
        "rn_cascade_record_outcome": (C.c_int, [vp, C.c_char_p, C.c_int]),
        "rn_cascade_metrics_text": (C.c_int, [P(C.c_char_p), vp]),
        "rn_cascade_destroy": (None, [vp]),
        "rn_result_status": (C.c_int, [vp]),
        "rn_result_answer": (C.c_char_p, [vp]),
        "rn_result_tier": (C.c_int32, [vp]),
        "rn_result_uncertain": (C.c_int, [vp]),
        "rn_result_cost": (C.c_double, [vp]),
        "rn_result_request_id": (C.c_char_p, [vp]),
        "rn_result_trace_size": (C.c_size_t, [vp]),
        "rn_result_trace_entry": (C.c_int, [P(_TraceEntry), vp, C.c_size_t]),
        "rn_result_destroy": (None, [vp]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


# ---- version / runtime ---------------------------------------------------------------------

def version() -> str:
    return _dec(library().rn_version_string())


def version_number() -> int:
    return int(library().rn_version_number())


def runtime_info() -> dict:
    import json
    out = C.c_char_p()
    _check(library().rn_runtime_info_json(C.byref(out)))
    return json.loads(_dec(out.value))


class _Handle:
    """Owns one C handle; close() (also on `with` exit and garbage collection) releases it with
    the rn_*_destroy function named by the subclass. Idempotent."""

    _destroy = ""

    def close(self) -> None:
        h = getattr(self, "_h", None)
        if h:
            getattr(library(), self._destroy)(h)
            self._h = C.c_void_p()

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- tokenizer -----------------------------------------------------------------------------

class Tokenizer(_Handle):
    _destroy = "rn_tokenizer_destroy"
    """WordPiece tokenizer (thread-safe). Tokenizer() loads the bundled vocabulary."""

    def __init__(self, vocab_path: Optional[str] = None, *, tokenizer_json: Optional[str] = None):
        self._h = C.c_void_p()
        lib = library()
        if tokenizer_json is not None:
            _check(lib.rn_tokenizer_create_from_json(C.byref(self._h), _enc(tokenizer_json)))
        else:
            _check(lib.rn_tokenizer_create_from_vocab(C.byref(self._h), _enc(vocab_path)))

    def encode(self, text: str, max_length: Optional[int] = None) -> List[int]:
        data = text.encode("utf-8")
        limit = C.c_size_t(-1).value if max_length is None else max_length
        n = C.c_size_t(0)
        cap = max(8, len(data) + 2)
        while True:
            buf = (C.c_int32 * cap)()
            st = library().rn_tokenizer_encode(self._h, data, len(data), limit, buf, cap, C.byref(n))
            if st == RN_OK:
                return list(buf[: n.value])
            if n.value > cap:  # buffer too small: retry with the size the library asked for
                cap = n.value
                continue
            _check(st)

    def vocab_size(self) -> int:
        n = C.c_size_t()
        _check(library().rn_tokenizer_vocab_size(self._h, C.byref(n)))
        return n.value

    def token_to_id(self, token: str) -> int:
        out = C.c_int32()
        _check(library().rn_tokenizer_token_to_id(self._h, _enc(token), C.byref(out)))
        return out.value


# ---- calibrator ----------------------------------------------------------------------------

METHODS = {"ltt": 0, "crc": 1, "split_conformal": 2, "pvalue_bad": 3}


class Calibrator(_Handle):
    _destroy = "rn_calibrator_destroy"
    """Conformal calibrator of per-(tier, task) acceptance thresholds (one thread at a time)."""

    def __init__(self, method: str = "ltt", alpha: float = 0.05, epsilon: float = 0.1,
                 cell_floor: int = 200, *, _handle: Optional[C.c_void_p] = None):
        self._h = C.c_void_p()
        if _handle is not None:
            self._h = _handle
            return
        if method not in METHODS:
            raise InvalidArgumentError(-1, f"unknown method {method!r} (one of {sorted(METHODS)})")
        p = library().rn_calibrator_params_default()
        p.method, p.alpha, p.epsilon, p.cell_floor = METHODS[method], alpha, epsilon, cell_floor
        _check(library().rn_calibrator_create(C.byref(self._h), C.byref(p)))

    @classmethod
    def load(cls, path: str) -> "Calibrator":
        h = C.c_void_p()
        _check(library().rn_calibrator_load(C.byref(h), _enc(path)))
        return cls(_handle=h)

    def calibrate(self, tiers: Sequence[str], tasks: Sequence[str],
                  u: Sequence[Sequence[float]], bad: Sequence[Sequence[int]]) -> None:
        """u[row][tier] uncertainties (nan: no answer), bad[row][tier] in {0, 1}."""
        n, k = len(tasks), len(tiers)
        if len(u) != n or len(bad) != n or any(len(r) != k for r in u) or any(len(r) != k for r in bad):
            raise InvalidArgumentError(-1, f"u and bad must be {n} rows x {k} tiers")
        names = (C.c_char_p * k)(*[_enc(t) for t in tiers])
        task_arr = (C.c_char_p * n)(*[_enc(t) for t in tasks])
        uu = (C.c_double * (n * k))(*[float(x) for r in u for x in r])
        bb = (C.c_uint8 * (n * k))(*[1 if x else 0 for r in bad for x in r])
        _check(library().rn_calibrator_calibrate(self._h, n, k, names, task_arr, uu, bb, None, None))

    def threshold(self, tier: int, task: str) -> float:
        out = C.c_double()
        _check(library().rn_calibrator_threshold(C.byref(out), self._h, tier, _enc(task)))
        return out.value

    def cell_status(self, tier: int, column: str) -> int:
        out = C.c_int32()
        _check(library().rn_calibrator_cell_status(C.byref(out), self._h, tier, _enc(column)))
        return out.value

    def save(self, path: str) -> None:
        _check(library().rn_calibrator_save(self._h, _enc(path)))


# ---- tiers implemented in Python -----------------------------------------------------------

class TierRequest:
    """What a Python tier sees (copied out of the C request)."""

    def __init__(self, c_req: "_TierRequest", ptr):
        self.request_id = _dec(c_req.request_id)
        self.query = _dec(c_req.query)
        self.task = _dec(c_req.task)
        self.tier = c_req.tier
        self.time_left_ms = None if c_req.time_left_ms < 0 else c_req.time_left_ms
        self.previous = [(c_req.previous_tiers[i], _dec(c_req.previous_texts[i]))
                         for i in range(c_req.n_previous)]
        self._ptr = ptr

    def cancelled(self) -> bool:
        return bool(library().rn_tier_request_cancelled(self._ptr))


class TierReply:
    """What a Python tier returns."""

    def __init__(self, text: str = "", confidence: Optional[float] = None, cost: float = 0.0,
                 latency_ms: Optional[float] = None, input_tokens: int = 0, output_tokens: int = 0):
        self.text, self.confidence, self.cost = text, confidence, cost
        self.latency_ms, self.input_tokens, self.output_tokens = latency_ms, input_tokens, output_tokens


class Tier(_Handle):
    _destroy = "rn_tier_destroy"
    """A cascade tier whose call is a Python function fn(TierRequest) -> TierReply | str.

    The function runs on the cascade's threads (ctypes takes the GIL). An exception it raises
    becomes a tier error (the cascade escalates) with the exception's text.
    """

    def __init__(self, name: str, fn: Callable[[TierRequest], object], expected_cost: float = -1.0):
        self.name = name
        self._fn = fn
        self._cb = _TierCallFn(self._call)  # kept alive as long as this object
        vt = _TierVtable(C.sizeof(_TierVtable), _enc(name), self._cb, _TierDestroyFn(),
                         expected_cost, None)
        self._h = C.c_void_p()
        _check(library().rn_tier_create(C.byref(self._h), C.byref(vt)))

    def _call(self, req_ptr, reply, _user):
        lib = library()
        try:
            out = self._fn(TierRequest(req_ptr.contents, req_ptr))
            if isinstance(out, str):
                out = TierReply(out)
            if not isinstance(out, TierReply):
                raise TypeError(f"tier {self.name!r} returned {type(out).__name__}, "
                                "expected TierReply or str")
            lib.rn_tier_reply_set_text(reply, _enc(out.text))
            if out.confidence is not None:
                lib.rn_tier_reply_set_confidence(reply, float(out.confidence))
            lib.rn_tier_reply_set_cost(reply, float(out.cost))
            if out.latency_ms is not None:
                lib.rn_tier_reply_set_latency_ms(reply, float(out.latency_ms))
            lib.rn_tier_reply_set_tokens(reply, int(out.input_tokens), int(out.output_tokens))
            return RN_OK
        except BaseException as e:  # never let an exception unwind into C
            try:
                lib.rn_tier_reply_set_error(reply, _enc(f"{type(e).__name__}: {e}"))
            except BaseException:
                pass
            return RN_ERR_CALLBACK


# ---- cascade -------------------------------------------------------------------------------

DECISIONS = ["accepted", "escalated", "final", "error", "skipped_budget", "skipped_deadline",
             "cancelled", "skipped_threshold"]


class TraceEntry:
    def __init__(self, e: _TraceEntry):
        self.tier = e.tier
        self.tier_name = _dec(e.tier_name)
        self.latency_ms = e.latency_ms
        self.cost = e.cost
        self.uncertainty = e.uncertainty
        self.delta = e.delta
        self.decision = DECISIONS[e.decision] if 0 <= e.decision < len(DECISIONS) else str(e.decision)
        self.error_status = e.error_status
        self.error = _dec(e.error_message)

    def __repr__(self):
        return f"TraceEntry({self.tier_name}, {self.decision}, u={self.uncertainty:.3g})"


class CascadeResult:
    """Copied out of the C result (which is freed at once)."""

    def __init__(self, h: C.c_void_p):
        lib = library()
        self.status = lib.rn_result_status(h)
        self.ok = self.status == RN_OK
        self.answer = _dec(lib.rn_result_answer(h))
        self.tier = lib.rn_result_tier(h)
        self.uncertain = bool(lib.rn_result_uncertain(h))
        self.cost = lib.rn_result_cost(h)
        self.request_id = _dec(lib.rn_result_request_id(h))
        self.trace: List[TraceEntry] = []
        for i in range(lib.rn_result_trace_size(h)):
            e = _TraceEntry()
            e.struct_size = C.sizeof(_TraceEntry)
            _check(lib.rn_result_trace_entry(C.byref(e), h, i))
            self.trace.append(TraceEntry(e))


class Cascade(_Handle):
    _destroy = "rn_cascade_destroy"
    """Conformal cascade over tiers (cheapest first). run() is thread-safe."""

    def __init__(self, tiers: Sequence[Tier], calibrator: Optional[Calibrator] = None, *,
                 threads: int = 0, online: bool = False, audit_rate: float = 0.1,
                 decision_log: Optional[str] = None):
        self._tiers = list(tiers)  # keep the Python callbacks alive
        p = library().rn_cascade_params_default()
        p.n_threads, p.online, p.audit_rate = threads, 1 if online else 0, audit_rate
        self._log = _enc(decision_log)
        p.decision_log_path = self._log
        arr = (C.c_void_p * len(self._tiers))(*[t._h for t in self._tiers])
        self._h = C.c_void_p()
        _check(library().rn_cascade_create(C.byref(self._h), arr, len(self._tiers),
                                           calibrator._h if calibrator else None, C.byref(p)))

    def run(self, query: str, task: str = "default", *, request_id: Optional[str] = None,
            start_tier: int = -1, max_tier: int = -1, alpha: float = 0.0,
            budget_usd: Optional[float] = None, deadline_ms: float = 0.0) -> CascadeResult:
        req = _CascadeRequest(C.sizeof(_CascadeRequest), _enc(request_id), _enc(query), _enc(task),
                              start_tier, max_tier, alpha,
                              -1.0 if budget_usd is None else budget_usd, deadline_ms)
        h = C.c_void_p()
        _check(library().rn_cascade_run(C.byref(h), self._h, C.byref(req)))
        try:
            return CascadeResult(h)
        finally:
            library().rn_result_destroy(h)

    def record_outcome(self, request_id: str, acceptable: bool) -> None:
        _check(library().rn_cascade_record_outcome(self._h, _enc(request_id), 1 if acceptable else 0))

    def metrics_text(self) -> str:
        out = C.c_char_p()
        _check(library().rn_cascade_metrics_text(C.byref(out), self._h))
        return _dec(out.value)

