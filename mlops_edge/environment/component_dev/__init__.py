"""The component inner loop: build the working tree's component, publish it, deploy it to one device.

What `gdk component build` and `greengrass-cli deployment create --recipeDir --artifactDir` do for
a Greengrass developer, against the control plane the standard AWS environment points at (the
local cloud when ``AWS_ENDPOINT_URL`` is set, AWS otherwise):

- :mod:`.build` packages a component with ``components/build.py`` (the code the pipeline's
  PublishComponents runs) into GDK's layout and chooses its *dev version*;
- :mod:`.publish` uploads the artifacts and calls CreateComponentVersion, as PublishComponents does;
- :mod:`.deploy` deploys it to one thing, keeping what that thing already runs, and follows the
  device's lifecycle states until the deployment ends.
"""

from __future__ import annotations

from mlops_edge.environment.component_dev.build import (
    Built,
    ComponentDevError,
    build_component,
    dev_version,
    load_build,
)

__all__ = ["Built", "ComponentDevError", "build_component", "dev_version", "load_build"]
