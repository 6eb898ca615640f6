-- A digest of each stored message's raw payload: a msg_id seen again with other bytes is not a
-- resend but a device bug, and its payload goes to quarantine as `conflicting_duplicate` instead
-- of being dropped as a duplicate. NULL for messages stored before (treated as resends).
ALTER TABLE ingested_messages ADD COLUMN digest bytea;
