"""The modes of ``bench/device_roundtrip.py`` beyond single MQTT requests (issue 15 §2), one module each.

- :mod:`.cpu`: CPU seconds of each process on the path (broker, core, inference component, load
  client), read with psutil before and after a mode;
- :mod:`.local_ipc`: a second component deployed on the device (its own recipe and
  ``accessControl``) asks the inference component over local pub/sub with awsiotsdk's IPC
  client, as the reference Greengrass sample's consumer does; :mod:`.consumer` is its code;
- :mod:`.batches`: 256-row requests over MQTT, rows answered per second;
- :mod:`.report`: the printed table.

``bench/device_roundtrip.py`` is the entry point; these modules take what it set up (the deployed
device, the MQTT load client) as arguments.
"""
