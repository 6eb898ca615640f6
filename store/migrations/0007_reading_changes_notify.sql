-- Wake-up for the rules stage. Every statement that announces patients in reading_changes (the
-- ingest's batch, a threshold override, a missing-data tick) also issues
-- pg_notify('homecare_reading_changes'), delivered only when its transaction commits. A rules
-- worker LISTENs and evaluates at once instead of finding the announcement at its next poll
-- (HOMECARE_RULES_POLL_S, still the fallback for a lost connection). Statement-level, so an
-- ingest batch of any size sends one notify; PostgreSQL also folds identical notifies of one
-- transaction into one (an INSERT … ON CONFLICT DO UPDATE fires both the INSERT and the UPDATE
-- statement triggers). No payload: the table says which patients, the notify only says "look".
CREATE FUNCTION reading_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('homecare_reading_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER reading_changes_notify AFTER INSERT OR UPDATE ON reading_changes
    FOR EACH STATEMENT EXECUTE FUNCTION reading_changes_notify();
