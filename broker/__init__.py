"""Broker: the server side of device access — MQTT accounts for devices and services.

The API issues, rotates and revokes a device's credentials here (``broker.credentials``); the
broker learns them through Mosquitto's dynamic-security plugin, administered over MQTT
(``broker.dynsec``); the plugin's state file can be rebuilt from the database
(``broker.sync``), which keeps only Mosquitto's own PBKDF2-SHA512 hash (``broker.hashing``).
Devices themselves (the contract's builders, the publisher, the simulator) are ``devices``.
"""
