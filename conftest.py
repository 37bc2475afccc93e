"""Root conftest: loads the shared fixture plugins of the suite."""

pytest_plugins = [
    "tests.fixtures.netns",
    "tests.fixtures.cluster",
    "tests.fixtures.operator",
    "tests.fixtures.storage",
    "tests.fixtures.hub",
    "tests.fixtures.keycloak",
    "tests.fixtures.browser",
]
