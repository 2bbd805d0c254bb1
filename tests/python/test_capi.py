"""ctest: the ctypes package examples/python/routenlp over the built C ABI.

Run by ctest with ROUTENLP_LIBRARY=<path of libroutenlp.so> and PYTHONPATH=examples/python.
"""
import math
import os
import tempfile
import threading
import unittest

import routenlp as rn


class VersionAndErrors(unittest.TestCase):
    def test_version(self):
        self.assertRegex(rn.version(), r"^\d+\.\d+\.\d+$")
        major, minor, patch = (int(x) for x in rn.version().split("."))
        self.assertEqual(rn.version_number(), major * 10000 + minor * 100 + patch)

    def test_runtime_info_is_json(self):
        info = rn.runtime_info()
        self.assertIsInstance(info, dict)
        self.assertGreater(len(info), 0)

    def test_errors_become_exceptions_with_the_library_message(self):
        with self.assertRaises(rn.IoError) as cm:
            rn.Calibrator.load("/nonexistent/dir/calib.json")
        self.assertIn("calib.json", str(cm.exception))
        self.assertEqual(cm.exception.status, -2)

    def test_uncalibrated_threshold_raises(self):
        cal = rn.Calibrator()
        with self.assertRaises(rn.RoutenlpError):
            cal.threshold(0, "t")


class TokenizerTest(unittest.TestCase):
    def test_bundled_vocab(self):
        try:
            tok = rn.Tokenizer()
        except rn.RoutenlpError as e:  # bundled vocabulary not installed in this tree
            self.skipTest(str(e))
        ids = tok.encode("Hello, world!")
        self.assertEqual(ids[0], tok.token_to_id("[CLS]"))
        self.assertEqual(ids[-1], tok.token_to_id("[SEP]"))
        self.assertGreater(len(ids), 3)
        self.assertEqual(len(tok.encode("a b c d e f g h", max_length=4)), 4)
        self.assertGreater(tok.vocab_size(), 1000)
        self.assertEqual(tok.token_to_id("definitely-not-a-token-xyz"), -1)

    def test_bad_vocab_path(self):
        with self.assertRaises(rn.IoError):
            rn.Tokenizer("/nonexistent/vocab.txt")


def _calibration(n=600, seed=3):
    # Deterministic synthetic rows: tier 0 is bad when u is large; tier 1 is always good.
    import random
    r = random.Random(seed)
    tasks, u, bad = [], [], []
    for _ in range(n):
        x = r.random()
        tasks.append("qa")
        u.append([x, 0.1])
        bad.append([1 if r.random() < x * x else 0, 0])
    return tasks, u, bad


class CalibratorTest(unittest.TestCase):
    def test_calibrate_save_load(self):
        cal = rn.Calibrator(alpha=0.1)
        tasks, u, bad = _calibration()
        cal.calibrate(["small", "large"], tasks, u, bad)
        d = cal.threshold(0, "qa")
        self.assertTrue(0.0 < d < 1.0, d)
        # Accepted rows (u <= d) have a bad rate well under alpha.
        acc = [b[0] for x, b in zip(u, bad) if x[0] <= d]
        self.assertGreater(len(acc), 50)
        self.assertLessEqual(sum(acc) / len(acc), 0.1)
        self.assertEqual(cal.threshold(1, "qa"), math.inf)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "calib.json")
            cal.save(path)
            again = rn.Calibrator.load(path)
            self.assertEqual(again.threshold(0, "qa"), d)

    def test_shape_mismatch(self):
        with self.assertRaises(rn.InvalidArgumentError):
            rn.Calibrator().calibrate(["a", "b"], ["t"], [[0.1]], [[0]])


class CascadeTest(unittest.TestCase):
    def _cal(self):
        cal = rn.Calibrator(alpha=0.1)
        tasks, u, bad = _calibration()
        cal.calibrate(["small", "large"], tasks, u, bad)
        return cal

    def test_python_tiers_accept_and_escalate(self):
        seen = []

        def small(req):
            seen.append(("small", req.query))
            conf = 0.95 if "easy" in req.query else 0.05
            return rn.TierReply("small:" + req.query, confidence=conf, cost=0.001)

        def large(req):
            seen.append(("large", req.query))
            self.assertEqual(req.previous[0][0], 0)  # saw the small tier's answer
            return rn.TierReply("large:" + req.query, confidence=0.9, cost=0.01)

        cal = self._cal()
        with rn.Cascade([rn.Tier("small", small), rn.Tier("large", large)], cal) as c:
            easy = c.run("easy question", "qa")
            self.assertTrue(easy.ok)
            self.assertEqual(easy.answer, "small:easy question")
            self.assertEqual(easy.tier, 0)
            self.assertEqual(easy.trace[0].decision, "accepted")
            hard = c.run("hard question", "qa")
            self.assertEqual(hard.answer, "large:hard question")
            self.assertEqual(hard.tier, 1)
            self.assertEqual([t.decision for t in hard.trace], ["escalated", "final"])
            self.assertAlmostEqual(hard.cost, 0.011)
            self.assertIn("routenlp", c.metrics_text())

    def test_exception_in_python_tier_escalates_with_its_message(self):
        def broken(req):
            raise RuntimeError("model server on fire")

        # Calibrated, so the small tier may accept and is called (uncalibrated it is not).
        with rn.Cascade([rn.Tier("small", broken), rn.Tier("large", lambda r: "fine")],
                        self._cal()) as c:
            res = c.run("q", "qa")
            self.assertTrue(res.ok)
            self.assertEqual(res.answer, "fine")
            self.assertEqual(res.trace[0].decision, "error")
            self.assertIn("model server on fire", res.trace[0].error)
        with rn.Cascade([rn.Tier("small", broken), rn.Tier("large", lambda r: "fine")]) as c:
            res = c.run("q", "qa")
            self.assertEqual(res.answer, "fine")
            self.assertEqual(res.trace[0].decision, "skipped_threshold")

    def test_all_tiers_fail(self):
        def broken(req):
            raise ValueError("nope")

        with rn.Cascade([rn.Tier("only", broken)]) as c:
            res = c.run("q", "qa")
            self.assertFalse(res.ok)
            self.assertEqual(res.tier, -1)

    def test_concurrent_runs_from_python_threads(self):
        with rn.Cascade([rn.Tier("a", lambda r: rn.TierReply(r.query, confidence=0.5)),
                         rn.Tier("b", lambda r: "b:" + r.query)]) as c:
            out = {}

            def worker(i):
                out[i] = c.run(f"q{i}", "qa").answer

            ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(out, {i: f"b:q{i}" for i in range(8)})

    def test_feedback_for_unknown_request_raises(self):
        with rn.Cascade([rn.Tier("a", lambda r: "x")], online=True, audit_rate=1.0) as c:
            res = c.run("q", "qa")
            c.record_outcome(res.request_id, True)
            with self.assertRaises(rn.InvalidArgumentError):
                c.record_outcome("never-seen", True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
