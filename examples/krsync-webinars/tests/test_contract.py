"""krsync's contract suite, the one its built-in connectors pass, run on this plugin."""

from __future__ import annotations

import pytest
from kit import KIT

from connectors.testing import ContractSuite, Kit


class TestWebinarContract(ContractSuite):
    @pytest.fixture
    def kit(self) -> Kit:
        return KIT
