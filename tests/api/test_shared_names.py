"""The names shared across components: a Workspace's hub server, a Dataset revision's claim."""

import pytest

from spe_api.datasetvolume import dataset_claim_name
from spe_api.hubserver import hub_server_name, parse_hub_server_name

pytestmark = pytest.mark.api


def test_hub_server_name_round_trips():
    name = hub_server_name("spe-lung-study", "ws-1")
    assert name == "spe-lung-study.ws-1"
    assert parse_hub_server_name(name) == ("spe-lung-study", "ws-1")


@pytest.mark.parametrize("server", ["", "ws-1", "a.b.c", "Spe.ws", "spe/ws", "spe.", ".ws", "-a.ws"])
def test_a_server_name_not_made_by_the_rule_names_no_workspace(server):
    assert parse_hub_server_name(server) is None


def test_hub_server_name_refuses_what_it_could_not_parse_back():
    with pytest.raises(ValueError, match="namespace and Workspace"):
        hub_server_name("spe.x", "ws")


def test_dataset_claim_name_carries_the_revision():
    assert dataset_claim_name("lung-ct", 3) == "dataset-lung-ct-r3"
