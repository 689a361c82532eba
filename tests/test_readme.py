"""The README's examples say what the commands print today.

Setting ids (``64x64-steps40-bs8-fp32-seed0-a7eb2e``) change whenever a suite file does; an
example showing an old one (say, `check`'s sample output) would teach a stale command.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.suites import available_suites, load_suite

ROOT = Path(__file__).resolve().parents[1]
SETTING = re.compile(r"\b\d+x\d+-steps\d+-bs\d+-(?:fp32|fp16|bf16)-seed\d+-[0-9a-f]{6}\b")


def test_every_setting_id_in_the_readme_is_a_current_suite_setting():
    documented = set(SETTING.findall((ROOT / "README.md").read_text(encoding="utf-8")))
    current = {load_suite(name).setting for name in available_suites()}
    assert documented, "the README documents no setting id (did the pattern change?)"
    assert documented <= current, (
        f"README shows setting ids no suite has: {sorted(documented - current)}; the suites "
        f"have {sorted(current)}. Re-run the command and paste its output."
    )
