-- How many times each patient has been evaluated. A rules worker keeps the readings it loaded
-- for a patient between passes (rules/window_cache.py) and reuses them only if this count is
-- still the one its own last pass left: otherwise another worker evaluated the patient in
-- between, consuming announcements of readings this worker never saw.
ALTER TABLE rule_progress ADD COLUMN evaluations bigint NOT NULL DEFAULT 0;
