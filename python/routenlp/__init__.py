"""routenlp from Python through its C ABI (ctypes; no compiled extension).

The shared library is found through the ROUTENLP_LIBRARY environment variable (the full path
of libroutenlp.so), else next to the package (in its directory or the one above), else by the
system loader ("libroutenlp.so.0"); LibraryNotFoundError lists every place tried. See
docs/python.md.

Every C error becomes a RoutenlpError (subclasses per status) carrying rn_last_error()'s text.
"""
from __future__ import annotations

import ctypes as C
import math
import os
from typing import Callable, Iterable, List, Optional, Sequence

__all__ = [
    "RoutenlpError", "InvalidArgumentError", "IoError", "ParseError", "TierError",
    "TimeoutError_", "CancelledError", "LibraryNotFoundError", "library", "version",
    "version_number", "runtime_info", "Tokenizer", "Calibrator", "TierReply", "TierRequest",
    "Tier", "Cascade", "CascadeResult", "TraceEntry", "Router", "RouterScores", "Pipeline",
    "Route", "Engine", "CellState",
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

class LibraryNotFoundError(OSError):
    """libroutenlp.so could not be loaded; .tried lists (place, reason) for every attempt."""

    def __init__(self, tried):
        self.tried = list(tried)
        lines = "\n".join(f"  {place}: {reason}" for place, reason in self.tried)
        super().__init__("routenlp: could not load the shared library libroutenlp.so; tried:\n"
                         + lines + "\nSet ROUTENLP_LIBRARY to its full path (e.g. "
                         "build/lib/libroutenlp.so), or install routenlp.")


_lib = None
_NAMES = ("libroutenlp.so.0", "libroutenlp.so")


def _library_candidates():
    """(place, what to dlopen) in search order."""
    env = os.environ.get("ROUTENLP_LIBRARY")
    if env:
        # An explicit path is authoritative: a wrong one is an error, not a fallback.
        return [(f"ROUTENLP_LIBRARY={env}", env)]
    here = os.path.dirname(os.path.abspath(__file__))
    out = [(os.path.join(d, n), os.path.join(d, n))
           for d in (here, os.path.dirname(here)) for n in _NAMES]
    out += [(f"system loader ({n})", n) for n in _NAMES]
    return out


def library() -> C.CDLL:
    """The loaded shared library (loaded on first use)."""
    global _lib
    if _lib is None:
        tried = []
        for place, target in _library_candidates():
            if os.sep in target and not os.path.exists(target):
                tried.append((place, "no such file"))
                continue
            try:
                lib = C.CDLL(target)
            except OSError as e:
                tried.append((place, str(e)))
                continue
            _declare(lib)
            _lib = lib
            break
        else:
            if os.environ.get("ROUTENLP_LIBRARY"):
                tried.append(("next to the package, system loader",
                              "not tried: ROUTENLP_LIBRARY is set"))
            raise LibraryNotFoundError(tried)
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
                ("alpha", C.c_double), ("budget_usd", C.c_double), ("deadline_ms", C.c_double),
                ("router_p", C.POINTER(C.c_double)), ("n_router_p", C.c_size_t)]


class _Route(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("start_tier", C.c_int32),
                ("first_tier", C.c_int32), ("max_tier", C.c_int32), ("alpha", C.c_double),
                ("difficulty", C.c_double), ("task_unseen", C.c_int32), ("n_p", C.c_uint32),
                ("column", C.c_char_p)]


class _CellState(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("status", C.c_char_p), ("delta", C.c_double),
                ("online", C.c_int32), ("alpha_t", C.c_double), ("cusum", C.c_double),
                ("labels", C.c_uint64), ("accepted_labels", C.c_uint64),
                ("accepted_bad", C.c_uint64), ("alarms", C.c_uint64),
                ("cusum_alarms", C.c_uint64), ("window_alarms", C.c_uint64),
                ("stall_alarms", C.c_uint64), ("calibrated_delta", C.c_double),
                ("has_curve", C.c_int32), ("last_alarm_unix_s", C.c_double)]


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
        "rn_tokenizer_encode": (C.c_int, [P(C.c_int32), C.c_size_t, P(C.c_size_t), vp,
                                          C.c_char_p, C.c_size_t, C.c_size_t]),
        "rn_tokenizer_vocab_size": (C.c_int, [P(C.c_size_t), vp]),
        "rn_tokenizer_token_to_id": (C.c_int, [P(C.c_int32), vp, C.c_char_p]),
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
        "rn_result_audited": (C.c_int, [vp]),
        "rn_result_destroy": (None, [vp]),
        "rn_router_load": (C.c_int, [P(vp), C.c_char_p]),
        "rn_router_tier_count": (C.c_int, [P(C.c_size_t), vp]),
        "rn_router_tier_name": (C.c_int, [P(C.c_char_p), vp, C.c_size_t]),
        "rn_router_name": (C.c_int, [P(C.c_char_p), vp]),
        "rn_router_score": (C.c_int, [P(C.c_double), C.c_size_t, P(C.c_double), vp,
                                      P(C.c_char_p), P(C.c_char_p), C.c_size_t]),
        "rn_router_destroy": (None, [vp]),
        "rn_pipeline_load": (C.c_int, [P(vp), C.c_char_p]),
        "rn_pipeline_tier_count": (C.c_int, [P(C.c_size_t), vp]),
        "rn_pipeline_tier_name": (C.c_int, [P(C.c_char_p), vp, C.c_size_t]),
        "rn_pipeline_router": (C.c_int, [P(vp), vp]),
        "rn_pipeline_manifest_json": (C.c_int, [P(C.c_char_p), vp]),
        "rn_pipeline_cell_status": (C.c_int, [P(C.c_char_p), vp, C.c_size_t, C.c_char_p]),
        "rn_pipeline_route": (C.c_int, [P(_Route), P(C.c_double), C.c_size_t, vp, C.c_char_p,
                                        C.c_char_p, C.c_char_p]),
        "rn_pipeline_route_batch": (C.c_int, [P(_Route), P(C.c_double), C.c_size_t, vp,
                                              P(C.c_char_p), P(C.c_char_p), P(C.c_char_p),
                                              C.c_size_t]),
        "rn_pipeline_destroy": (None, [vp]),
        "rn_engine_create": (C.c_int, [P(vp), vp, P(_TierVtable), C.c_size_t,
                                       P(_CascadeParams)]),
        "rn_engine_run": (C.c_int, [P(vp), vp, P(_CascadeRequest)]),
        "rn_engine_run_batch": (C.c_int, [P(vp), vp, P(P(_CascadeRequest)), C.c_size_t]),
        "rn_engine_record_feedback": (C.c_int, [vp, C.c_char_p, C.c_int]),
        "rn_engine_metrics_text": (C.c_int, [C.c_char_p, C.c_size_t, P(C.c_size_t), vp]),
        "rn_engine_cell_state": (C.c_int, [P(_CellState), vp, C.c_size_t, C.c_char_p]),
        "rn_engine_destroy": (None, [vp]),
    }
    for name, (res, args) in sigs.items():
        # An older library lacks the newer functions: the rest stays usable, and calling a
        # missing one raises AttributeError naming it.
        fn = getattr(lib, name, None)
        if fn is None:
            continue
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
            st = library().rn_tokenizer_encode(buf, cap, C.byref(n), self._h, data, len(data), limit)
            if st == RN_OK:
                return list(buf[: n.value])
            if n.value > cap:  # buffer too small: retry with the size the library asked for
                cap = n.value
                continue
            _check(st)

    def vocab_size(self) -> int:
        n = C.c_size_t()
        _check(library().rn_tokenizer_vocab_size(C.byref(n), self._h))
        return n.value

    def token_to_id(self, token: str) -> int:
        out = C.c_int32()
        _check(library().rn_tokenizer_token_to_id(C.byref(out), self._h, _enc(token)))
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
        self._expected_cost = expected_cost
        self._h = C.c_void_p()
        _check(library().rn_tier_create(C.byref(self._h), C.byref(vt)))

    def _vtable(self) -> "_TierVtable":
        """The same callback as a vtable (for Engine); the Python object owns everything."""
        return _TierVtable(C.sizeof(_TierVtable), _enc(self.name), self._cb, _TierDestroyFn(),
                           self._expected_cost, None)

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
        self.audited = bool(lib.rn_result_audited(h))  # feedback may be sent for it
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
            budget_usd: Optional[float] = None, deadline_ms: float = 0.0,
            router_p: Optional[Sequence[float]] = None) -> CascadeResult:
        """router_p: router P(acceptable) per tier (u = 1 - p for a tier without confidence)."""
        req = _request(query, task, request_id, start_tier, max_tier, alpha, budget_usd,
                       deadline_ms, router_p)
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



def _request(query, task, request_id=None, start_tier=-1, max_tier=-1, alpha=0.0,
             budget_usd=None, deadline_ms=0.0, router_p=None) -> _CascadeRequest:
    """An rn_cascade_request; its router_p array is kept alive on the returned struct."""
    req = _CascadeRequest(C.sizeof(_CascadeRequest), _enc(request_id), _enc(query), _enc(task),
                          start_tier, max_tier, alpha,
                          -1.0 if budget_usd is None else budget_usd, deadline_ms, None, 0)
    if router_p is not None:
        arr = (C.c_double * len(router_p))(*[float(x) for x in router_p])
        req.router_p = C.cast(arr, C.POINTER(C.c_double))
        req.n_router_p = len(router_p)
        req._keep = arr
    return req


# ---- routers -------------------------------------------------------------------------------

class RouterScores:
    """A router's prediction for one query: p[k] = P(tier k's answer is acceptable)."""

    def __init__(self, p: List[float], difficulty: float):
        self.p, self.difficulty = p, difficulty

    def __repr__(self):
        return f"RouterScores(p={[round(x, 4) for x in self.p]}, difficulty={self.difficulty:.3g})"


def _strings(values: Sequence[str], what: str):
    if isinstance(values, (str, bytes)):
        raise InvalidArgumentError(-1, f"{what} must be a sequence of strings, not one string")
    return (C.c_char_p * len(values))(*[_enc(v) for v in values])


class Router(_Handle):
    """A saved router (immutable; score() is thread-safe). Router.load(dir)."""

    _destroy = "rn_router_destroy"

    def __init__(self, _handle: C.c_void_p):
        self._h = _handle
        lib = library()
        n = C.c_size_t()
        _check(lib.rn_router_tier_count(C.byref(n), self._h))
        self.tiers: List[str] = []
        for k in range(n.value):
            name = C.c_char_p()
            _check(lib.rn_router_tier_name(C.byref(name), self._h, k))
            self.tiers.append(_dec(name.value))
        name = C.c_char_p()
        _check(lib.rn_router_name(C.byref(name), self._h))
        self.name = _dec(name.value)

    @classmethod
    def load(cls, directory: str) -> "Router":
        h = C.c_void_p()
        _check(library().rn_router_load(C.byref(h), _enc(os.fspath(directory))))
        return cls(h)

    def score(self, queries: Sequence[str], tasks) -> List[RouterScores]:
        """One RouterScores per query; tasks: one per query, or one task for all."""
        if isinstance(tasks, str):
            tasks = [tasks] * len(queries)
        n, k = len(queries), len(self.tiers)
        if len(tasks) != n:
            raise InvalidArgumentError(-1, f"{len(tasks)} tasks for {n} queries")
        if n == 0:
            return []
        p = (C.c_double * (n * k))()
        d = (C.c_double * n)()
        _check(library().rn_router_score(p, n * k, d, self._h, _strings(queries, "queries"),
                                         _strings(tasks, "tasks"), n))
        return [RouterScores(list(p[i * k:(i + 1) * k]), d[i]) for i in range(n)]


# ---- pipeline ------------------------------------------------------------------------------

class Route:
    """Where a query goes before any tier is called (Pipeline.route)."""

    def __init__(self, r: _Route, p: List[float]):
        self.start_tier = r.start_tier
        self.first_tier = r.first_tier
        self.max_tier = r.max_tier
        self.alpha = r.alpha
        self.difficulty = None if math.isnan(r.difficulty) else r.difficulty
        self.task_unseen = bool(r.task_unseen)
        self.p = p  # router p per tier; [] without a router
        self.column = _dec(r.column)

    def __repr__(self):
        return (f"Route(first_tier={self.first_tier}, start_tier={self.start_tier}, "
                f"column={self.column!r}, p={[round(x, 4) for x in self.p]})")


class Pipeline(_Handle):
    """A pipeline artifact (portfolio + router + thresholds + acceptance score), immutable and
    thread-safe. Pipeline.load(dir); route(), route_batch(), engine()."""

    _destroy = "rn_pipeline_destroy"

    def __init__(self, _handle: C.c_void_p):
        self._h = _handle
        lib = library()
        n = C.c_size_t()
        _check(lib.rn_pipeline_tier_count(C.byref(n), self._h))
        self.tiers: List[str] = []
        for k in range(n.value):
            name = C.c_char_p()
            _check(lib.rn_pipeline_tier_name(C.byref(name), self._h, k))
            self.tiers.append(_dec(name.value))

    @classmethod
    def load(cls, directory: str) -> "Pipeline":
        h = C.c_void_p()
        _check(library().rn_pipeline_load(C.byref(h), _enc(os.fspath(directory))))
        return cls(h)

    @property
    def manifest(self) -> dict:
        """manifest.json of the artifact (system, description, router_kind, files, ...)."""
        import json
        out = C.c_char_p()
        _check(library().rn_pipeline_manifest_json(C.byref(out), self._h))
        return json.loads(_dec(out.value))

    @property
    def router(self) -> Optional[Router]:
        """A new handle on the pipeline's router, or None when it has none."""
        h = C.c_void_p()
        _check(library().rn_pipeline_router(C.byref(h), self._h))
        return Router(h) if h.value else None

    def cell_status(self, tier: int, column: str) -> str:
        """Calibration status of cell (tier, column): "certified", "pooled", ... ."""
        out = C.c_char_p()
        _check(library().rn_pipeline_cell_status(C.byref(out), self._h, tier, _enc(column)))
        return _dec(out.value)

    def route(self, query: str, task: str, request_id: Optional[str] = None) -> Route:
        k = len(self.tiers)
        r = _Route()
        r.struct_size = C.sizeof(_Route)
        p = (C.c_double * k)()
        _check(library().rn_pipeline_route(C.byref(r), p, k, self._h, _enc(query), _enc(task),
                                           _enc(request_id)))
        return Route(r, list(p[:r.n_p]))

    def route_batch(self, queries: Sequence[str], tasks,
                    request_ids: Optional[Sequence[Optional[str]]] = None) -> List[Route]:
        """One batched router call; tasks: one per query or one for all."""
        if isinstance(tasks, str):
            tasks = [tasks] * len(queries)
        n, k = len(queries), len(self.tiers)
        if len(tasks) != n or (request_ids is not None and len(request_ids) != n):
            raise InvalidArgumentError(-1, f"tasks and request_ids must have {n} entries")
        if n == 0:
            return []
        routes = (_Route * n)()
        for r in routes:
            r.struct_size = C.sizeof(_Route)
        p = (C.c_double * (n * k))()
        ids = None if request_ids is None else (C.c_char_p * n)(*[_enc(x) for x in request_ids])
        _check(library().rn_pipeline_route_batch(routes, p, n * k, self._h,
                                                 _strings(queries, "queries"),
                                                 _strings(tasks, "tasks"), ids, n))
        return [Route(routes[i], list(p[i * k:i * k + routes[i].n_p])) for i in range(n)]

    def engine(self, tiers, *, threads: int = 0, online: bool = False, audit_rate: float = 0.1,
               decision_log: Optional[str] = None) -> "Engine":
        """The pipeline's cascade over Python tiers: a list (pipeline tier order) of Tier objects
        or callables fn(TierRequest) -> TierReply | str, or a dict tier name -> either."""
        return Engine(self, tiers, threads=threads, online=online, audit_rate=audit_rate,
                      decision_log=decision_log)


class CellState:
    """A running engine's (tier, column) cell: calibration status and online state."""

    def __init__(self, c: _CellState):
        self.status = _dec(c.status)
        self.delta = c.delta
        self.online = bool(c.online)
        self.alpha_t = c.alpha_t
        self.cusum = c.cusum
        self.labels = c.labels
        self.accepted_labels = c.accepted_labels
        self.accepted_bad = c.accepted_bad
        self.alarms = c.alarms
        self.cusum_alarms = c.cusum_alarms
        self.window_alarms = c.window_alarms
        self.stall_alarms = c.stall_alarms
        self.calibrated_delta = c.calibrated_delta
        self.has_curve = bool(c.has_curve)  # the threshold moves along the delta(alpha) curve
        self.last_alarm_unix_s = c.last_alarm_unix_s

    def __repr__(self):
        return f"CellState({self.status}, delta={self.delta:.4g}, labels={self.labels})"


class Engine(_Handle):
    """A pipeline's cascade engine over Python tiers. run(), run_batch(), feedback(),
    metrics_text() and cell_state() are thread-safe. Keeps its tiers' callbacks alive: close it
    (or use `with`) before dropping them."""

    _destroy = "rn_engine_destroy"

    def __init__(self, pipeline: Pipeline, tiers, *, threads: int = 0, online: bool = False,
                 audit_rate: float = 0.1, decision_log: Optional[str] = None):
        self._h = C.c_void_p()
        self.pipeline = pipeline
        if isinstance(tiers, dict):
            missing = [t for t in pipeline.tiers if t not in tiers]
            if missing or len(tiers) != len(pipeline.tiers):
                raise InvalidArgumentError(-1, f"tiers must name exactly the pipeline's tiers "
                                               f"{pipeline.tiers}; got {sorted(tiers)}")
            tiers = [tiers[t] for t in pipeline.tiers]
        tiers = list(tiers)
        if len(tiers) != len(pipeline.tiers):
            raise InvalidArgumentError(-1, f"{len(tiers)} tiers for the pipeline's "
                                           f"{len(pipeline.tiers)} ({pipeline.tiers})")
        self._tiers = [t if isinstance(t, Tier) else Tier(name, t)
                       for name, t in zip(pipeline.tiers, tiers)]
        vts = (_TierVtable * len(self._tiers))(*[t._vtable() for t in self._tiers])
        p = library().rn_cascade_params_default()
        p.n_threads, p.online, p.audit_rate = threads, 1 if online else 0, audit_rate
        self._log = _enc(decision_log)
        p.decision_log_path = self._log
        _check(library().rn_engine_create(C.byref(self._h), pipeline._h, vts, len(self._tiers),
                                          C.byref(p)))

    def run(self, query: str, task: str = "default", *, request_id: Optional[str] = None,
            start_tier: int = -1, max_tier: int = -1, alpha: float = 0.0,
            budget_usd: Optional[float] = None, deadline_ms: float = 0.0,
            router_p: Optional[Sequence[float]] = None) -> CascadeResult:
        """router_p None: the pipeline router's scores; else the caller's, one per tier."""
        req = _request(query, task, request_id, start_tier, max_tier, alpha, budget_usd,
                       deadline_ms, router_p)
        h = C.c_void_p()
        _check(library().rn_engine_run(C.byref(h), self._h, C.byref(req)))
        try:
            return CascadeResult(h)
        finally:
            library().rn_result_destroy(h)

    def run_batch(self, requests: Sequence) -> List[CascadeResult]:
        """requests: (query, task) pairs or dicts of run()'s keyword arguments (query, task,
        ...). Runs on the engine's pool; results in request order."""
        reqs = []
        for r in requests:
            if isinstance(r, dict):
                r = dict(r)
                reqs.append(_request(r.pop("query"), r.pop("task", "default"), **r))
            else:
                q, t = r
                reqs.append(_request(q, t))
        n = len(reqs)
        if n == 0:
            return []
        ptrs = (C.POINTER(_CascadeRequest) * n)(*[C.pointer(r) for r in reqs])
        out = (C.c_void_p * n)()
        _check(library().rn_engine_run_batch(out, self._h, ptrs, n))
        try:
            return [CascadeResult(C.c_void_p(h)) for h in out]
        finally:
            for h in out:
                library().rn_result_destroy(h)

    def feedback(self, request_id: str, acceptable: bool) -> None:
        """Label of an audited request's answer (CascadeResult.audited)."""
        _check(library().rn_engine_record_feedback(self._h, _enc(request_id),
                                                   1 if acceptable else 0))

    def metrics_text(self) -> str:
        lib = library()
        need = C.c_size_t(0)
        cap = 1 << 14
        while True:
            buf = C.create_string_buffer(cap)
            st = lib.rn_engine_metrics_text(buf, cap, C.byref(need), self._h)
            if st == RN_OK:
                return _dec(buf.value)
            if need.value > cap:  # grew: retry with the size asked for (and some room)
                cap = need.value + 4096
                continue
            _check(st)

    def cell_state(self, tier: int, column: str) -> CellState:
        c = _CellState()
        c.struct_size = C.sizeof(_CellState)
        _check(library().rn_engine_cell_state(C.byref(c), self._h, tier, _enc(column)))
        return CellState(c)

    def cell_status(self, tier: int, column: str) -> str:
        return self.pipeline.cell_status(tier, column)
