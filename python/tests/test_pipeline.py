"""The installed routenlp package over a pipeline artifact (python_package ctest, run by
run_installed.py): library lookup, Router, Pipeline routing and an Engine over Python tiers.

The artifact (tests/c_consumer/make_pipeline_artifact.cpp) has tiers small/large, a task-prior
router with p = {0.75, 1.0} for math, {0.2, 0.9} for qa and {0.475, 0.95} for unseen tasks, and
small-tier thresholds in (0.25, 0.8): a small tier that reports no confidence (u = 1 - p) is
accepted for math and escalates for qa.
"""
import os
import subprocess
import sys
import unittest

import routenlp as rn

ARTIFACT = os.environ["ROUTENLP_TEST_PIPELINE"]


class InstalledPackage(unittest.TestCase):
    def test_imported_from_the_install_target(self):
        site = os.environ.get("ROUTENLP_EXPECT_SITE")
        if not site:
            self.skipTest("not run by run_installed.py")
        self.assertTrue(os.path.abspath(rn.__file__).startswith(os.path.abspath(site) + os.sep),
                        rn.__file__)

    def _probe(self, env_lib, code):
        env = dict(os.environ)
        env.pop("ROUTENLP_LIBRARY", None)
        if env_lib is not None:
            env["ROUTENLP_LIBRARY"] = env_lib
        env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(rn.__file__)))
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True)

    def test_a_wrong_library_path_lists_where_it_looked(self):
        p = self._probe("/nonexistent/libroutenlp.so",
                        "import routenlp\ntry:\n routenlp.version()\n"
                        "except routenlp.LibraryNotFoundError as e:\n print(e)\n"
                        " raise SystemExit(3)")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("ROUTENLP_LIBRARY=/nonexistent/libroutenlp.so", p.stdout)
        self.assertIn("no such file", p.stdout)

    def test_library_next_to_the_package(self):
        pkg = os.path.dirname(os.path.abspath(rn.__file__))
        site = os.path.dirname(pkg)
        if not os.environ.get("ROUTENLP_EXPECT_SITE"):
            self.skipTest("would write into a package directory not made for this test")
        link = os.path.join(site, "libroutenlp.so")
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.environ["ROUTENLP_LIBRARY"]), link)
        p = self._probe(None, "import routenlp\nprint(routenlp.library()._name)\n"
                              "print(routenlp.version())")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.split()
        self.assertTrue(lines[0].startswith(pkg) or lines[0].startswith(site), lines[0])
        self.assertEqual(lines[1], rn.version())


class RouterTest(unittest.TestCase):
    def test_load_and_score(self):
        r = rn.Router.load(os.path.join(ARTIFACT, "router"))
        self.assertEqual(r.tiers, ["small", "large"])
        self.assertTrue(r.name)
        s = r.score(["2+2", "capital of France", "balance it"], ["math", "qa", "chemistry"])
        self.assertEqual([x.p for x in s], [[0.75, 1.0], [0.2, 0.9], [0.475, 0.95]])
        self.assertTrue(all(0.0 <= x.difficulty <= 1.0 for x in s))
        self.assertEqual([x.p for x in r.score(["a", "b"], "qa")], [[0.2, 0.9]] * 2)
        with self.assertRaises(rn.InvalidArgumentError):
            r.score(["a"], ["qa", "math"])

    def test_missing_router(self):
        with self.assertRaises(rn.RoutenlpError):
            rn.Router.load(os.path.join(ARTIFACT, "no-such-router"))


class PipelineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = rn.Pipeline.load(ARTIFACT)

    def test_tiers_and_cells(self):
        self.assertEqual(self.p.tiers, ["small", "large"])
        self.assertEqual(self.p.cell_status(0, "math"), "certified")
        self.assertEqual(self.p.cell_status(1, "qa"), "final_tier")
        with self.assertRaises(rn.InvalidArgumentError):
            self.p.cell_status(0, "no-such-task")
        self.assertEqual(self.p.router.tiers, self.p.tiers)
        m = self.p.manifest
        self.assertEqual(m["router_kind"], "task-prior")
        self.assertIn("calibration.json", [f[0] for f in m["files"]])

    def test_route(self):
        r = self.p.route("what is 2+2", "math", request_id="r1")
        self.assertEqual(r.p, [0.75, 1.0])
        self.assertEqual((r.start_tier, r.first_tier, r.max_tier), (0, 0, 1))
        self.assertEqual(r.column, "math")
        self.assertAlmostEqual(r.alpha, 0.1)
        self.assertFalse(r.task_unseen)
        u = self.p.route("balance it", "chemistry")
        self.assertTrue(u.task_unseen)
        self.assertEqual(u.column, "*")
        self.assertEqual(u.p, [0.475, 0.95])

    def test_route_batch_matches_route(self):
        qs, ts = ["a", "b", "c"], ["math", "qa", "chemistry"]
        batch = self.p.route_batch(qs, ts, request_ids=["x", None, "z"])
        for q, t, b in zip(qs, ts, batch):
            one = self.p.route(q, t)
            self.assertEqual((b.p, b.column, b.first_tier), (one.p, one.column, one.first_tier))

    def test_missing_artifact(self):
        with self.assertRaises(rn.IoError) as cm:
            rn.Pipeline.load(os.path.join(ARTIFACT, "does-not-exist"))
        self.assertIn("does-not-exist", str(cm.exception))


class EngineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = rn.Pipeline.load(ARTIFACT)

    def _tiers(self, calls):
        def small(req):  # no confidence: u = 1 - router p
            calls.append(("small", req.query))
            return rn.TierReply("small:" + req.query, cost=0.001)

        def large(req):
            calls.append(("large", req.query))
            return rn.TierReply("large:" + req.query, confidence=0.9, cost=0.01)
        return {"small": small, "large": large}

    def test_cascade_over_python_tiers_with_router_scores(self):
        calls = []
        with self.p.engine(self._tiers(calls), threads=2, online=True, audit_rate=1.0) as e:
            math_r = e.run("2+2", "math", request_id="m1")
            self.assertEqual((math_r.tier, math_r.answer), (0, "small:2+2"))
            self.assertEqual(math_r.trace[0].decision, "accepted")
            self.assertAlmostEqual(math_r.trace[0].uncertainty, 0.25)
            self.assertTrue(math_r.audited)
            qa = e.run("capital?", "qa")
            self.assertEqual(qa.tier, 1)
            self.assertEqual([t.decision for t in qa.trace], ["escalated", "final"])
            # The caller's scores replace the router's.
            own = e.run("2+2", "math", router_p=[0.1, 0.9])
            self.assertEqual(own.tier, 1)
            self.assertAlmostEqual(own.trace[0].uncertainty, 0.9)
            batch = e.run_batch([("a", "math"), ("b", "qa"),
                                 {"query": "c", "task": "math", "router_p": [0.05, 1.0]}])
            self.assertEqual([(b.tier, b.answer) for b in batch],
                             [(0, "small:a"), (1, "large:b"), (1, "large:c")])
            e.feedback("m1", True)
            cell = e.cell_state(0, "math")
            self.assertEqual((cell.status, cell.online, cell.labels), ("certified", True, 1))
            self.assertTrue(0.25 < cell.delta < 0.8)
            with self.assertRaises(rn.InvalidArgumentError):
                e.feedback("never-sent", False)
            self.assertIn("routenlp", e.metrics_text())
            with self.assertRaises(rn.InvalidArgumentError):
                e.run("q", "math", start_tier=2)
        self.assertEqual(sum(1 for c in calls if c[0] == "small"), 6)

    def test_exception_in_a_tier_escalates(self):
        def broken(req):
            raise RuntimeError("small model down")
        with self.p.engine([broken, lambda req: "fine"]) as e:
            r = e.run("2+2", "math")
            self.assertEqual((r.tier, r.answer), (1, "fine"))
            self.assertEqual(r.trace[0].decision, "error")
            self.assertIn("small model down", r.trace[0].error)

    def test_tiers_must_match_the_pipeline(self):
        with self.assertRaises(rn.InvalidArgumentError):
            self.p.engine([lambda req: "x"])
        with self.assertRaises(rn.InvalidArgumentError):
            self.p.engine({"small": lambda r: "x", "huge": lambda r: "y"})
        with self.assertRaises(rn.InvalidArgumentError):  # the C side checks names too
            self.p.engine([rn.Tier("small", lambda r: "x"), rn.Tier("huge", lambda r: "y")])


if __name__ == "__main__":
    unittest.main()
