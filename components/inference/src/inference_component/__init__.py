"""Greengrass inference component: serves the model component's predictions over IPC.

Runs on a real Greengrass nucleus and on the simulated core alike: it only speaks Greengrass IPC
(``GreengrassCoreIPCClientV2``) and reads everything else from its component configuration.
"""
