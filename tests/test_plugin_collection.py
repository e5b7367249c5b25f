"""What the plugin does at collection: each test's kari markers, read once per node."""

from __future__ import annotations

import json

import pytest

#: Writes, per collected test, the kari marker names the plugin sees and those pytest gives.
PROBE = """
import json

import pytest

from pytest_kari_debug.plugin.state import kari_markers


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    seen = {
        item.nodeid: [
            sorted(kari_markers(item)),
            sorted({m.name for m in item.iter_markers() if m.name.startswith("kari_")}),
        ]
        for item in items
    }
    with open("markers.json", "w") as handle:
        json.dump(seen, handle)
"""


def test_each_tests_kari_markers_are_those_pytest_gives_from_every_level(
    pytester: pytest.Pytester,
) -> None:
    """Markers on the module (``pytestmark``), a class, a function and a parameter reach each
    test they apply to, and only those, although each parent's markers are read once for all
    its tests; a test without any shares one empty set."""
    pytester.makeconftest(PROBE)
    pytester.makepyfile(
        test_marked="""
        import pytest

        pytestmark = pytest.mark.kari_extension("ext")

        def test_module_only():
            pass

        @pytest.mark.kari_profile
        def test_own_marker():
            pass

        @pytest.mark.kari_budget(duration_ms=10_000)
        class TestClass:
            def test_in_class(self):
                pass

            @pytest.mark.kari_repeat(2)
            def test_in_class_with_own(self):
                pass

        @pytest.mark.parametrize(
            "n", [1, pytest.param(2, marks=pytest.mark.kari_alert("errors > 5"))]
        )
        def test_param(n):
            pass
        """,
        test_plain="""
        import pytest

        @pytest.mark.slow
        def test_a():
            pass

        def test_b():
            pass
        """,
    )
    pytester.makeini("[pytest]\nmarkers = slow: slow\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kari-debug")
    result.assert_outcomes(passed=8)
    seen = json.loads((pytester.path / "markers.json").read_text())
    assert {nodeid: ours for nodeid, (ours, _) in seen.items()} == {
        nodeid: pytests for nodeid, (_, pytests) in seen.items()
    }
    assert seen["test_marked.py::TestClass::test_in_class_with_own"][0] == [
        "kari_budget", "kari_extension", "kari_repeat",
    ]  # fmt: skip
    assert seen["test_marked.py::test_param[2]"][0] == ["kari_alert", "kari_extension"]
    assert seen["test_marked.py::test_param[1]"][0] == ["kari_extension"]
    assert seen["test_plain.py::test_a"][0] == seen["test_plain.py::test_b"][0] == []


def test_a_run_without_markers_shares_the_ini_rules_and_still_judges_them(
    pytester: pytest.Pytester,
) -> None:
    """Tests without kari markers get the ini's alert rules without a copy each, and a rule
    of the ini still fails the test that breaks it while a marker's rule adds to them."""
    pytester.makeini("[pytest]\nkari_alert_rules =\n    errors > 0 severity=critical\n")
    pytester.makepyfile(
        """
        import pytest

        def test_quiet():
            pass

        def test_noisy(kari_errors):
            kari_errors.record_error("ValueError", "bad")

        @pytest.mark.kari_budget(duration_ms=0.000001)
        def test_budget():
            sum(range(10_000))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kari-debug")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_noisy*", "*test_budget*"])
