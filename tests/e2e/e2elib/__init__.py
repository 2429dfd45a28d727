"""Helpers for the Fleetjobs end-to-end tests.

* ``server``   -- build/locate the binary, run ``fleetjobs serve``, the ``aws`` CLI wrapper.
* ``identity`` -- device identities (thing + active certificate + policy) and policy documents.
* ``mqtt``     -- a small paho-mqtt client, and ``JobsDevice`` speaking the MQTT Jobs API.
* ``jsdevice`` -- the aws-iot-device-sdk (v1, Node) ``jobs-example.js`` sample as a subprocess.
* ``util``     -- polling and small shared bits.
"""
