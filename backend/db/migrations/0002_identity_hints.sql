-- Tier 2 reads library_identity.discogs_release_id, and the station publishes no change of that
-- table (it has no cdc trigger). This trigger tells the service which library rows changed; the
-- service then re-checks the affected rotation rows. It only notifies: it reads and writes nothing.
--
-- Installing a trigger on a station table needs that table's owner: run `python -m backend migrate`
-- once as the owner. The serving role needs no privilege for it.

CREATE FUNCTION __SERVICE__.hint_identity_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND NEW.library_id = OLD.library_id
     AND NEW.discogs_release_id IS NOT DISTINCT FROM OLD.discogs_release_id THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify(
    '__SERVICE___hints',
    json_build_object(
      'table', TG_TABLE_NAME,
      'library_ids', json_build_array(
        CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.library_id END,
        CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.library_id END)
    )::text);
  RETURN NULL;
END $$;

CREATE TRIGGER __SERVICE___identity_hint
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.library_identity
  FOR EACH ROW EXECUTE FUNCTION __SERVICE__.hint_identity_change();
