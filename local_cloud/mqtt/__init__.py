"""MQTT side of the local cloud: a local CA and a mosquitto child process with per-thing ACLs."""

from local_cloud.mqtt.broker import Broker
from local_cloud.mqtt.ca import CertificateAuthority, IssuedCertificate

__all__ = ["Broker", "CertificateAuthority", "IssuedCertificate"]
