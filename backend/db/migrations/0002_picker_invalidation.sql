-- Keep every worker's picker cache honest whoever writes (the API, tubafrenzy sync, plain SQL):
-- NOTIFY rotation_picker_invalidate with the affected rotation ids whenever a row's answer may have
-- changed, and clear the persistent negative stamp when the lookup text changes.

CREATE OR REPLACE FUNCTION wxyc_schema.rotation_picker_clear_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.artist_name, NEW.album_title, NEW.record_label)
       IS DISTINCT FROM (OLD.artist_name, OLD.album_title, OLD.record_label) THEN
    NEW.tracklist_lookup_attempted_at := NULL;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER rotation_picker_clear_stamp
  BEFORE UPDATE OF artist_name, album_title, record_label ON wxyc_schema.rotation
  FOR EACH ROW EXECUTE FUNCTION wxyc_schema.rotation_picker_clear_stamp();

CREATE OR REPLACE FUNCTION wxyc_schema.rotation_picker_notify(ids integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  payload text;
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN
    RETURN;
  END IF;
  payload := json_build_object('rotation_ids', to_json(ids))::text;
  IF octet_length(payload) > 7000 THEN
    -- NOTIFY payloads are capped at 8000 bytes; past that, tell listeners to drop everything.
    payload := '{"all": true}';
  END IF;
  PERFORM pg_notify('rotation_picker_invalidate', payload);
END $$;

CREATE OR REPLACE FUNCTION wxyc_schema.rotation_picker_notify_rotation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM wxyc_schema.rotation_picker_notify(ARRAY[NEW.id]);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM wxyc_schema.rotation_picker_notify(ARRAY[OLD.id]);
  ELSIF (NEW.artist_name, NEW.album_title, NEW.record_label, NEW.album_id, NEW.discogs_release_id)
          IS DISTINCT FROM
        (OLD.artist_name, OLD.album_title, OLD.record_label, OLD.album_id, OLD.discogs_release_id)
     OR (OLD.tracklist_lookup_attempted_at IS NOT NULL AND NEW.tracklist_lookup_attempted_at IS NULL) THEN
    -- Stamping a miss (NULL -> now) is the resolver's own write and changes no answer: no notify.
    PERFORM wxyc_schema.rotation_picker_notify(ARRAY[NEW.id]);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER rotation_picker_notify_rotation
  AFTER INSERT OR UPDATE OR DELETE ON wxyc_schema.rotation
  FOR EACH ROW EXECUTE FUNCTION wxyc_schema.rotation_picker_notify_rotation();

CREATE OR REPLACE FUNCTION wxyc_schema.rotation_picker_notify_identity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids integer[];
BEGIN
  IF TG_OP = 'UPDATE'
     AND NEW.library_id = OLD.library_id
     AND NEW.discogs_release_id IS NOT DISTINCT FROM OLD.discogs_release_id THEN
    RETURN NULL;
  END IF;
  SELECT array_agg(r.id) INTO ids
  FROM wxyc_schema.rotation r
  WHERE r.album_id IN (
    CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.library_id END,
    CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.library_id END);
  PERFORM wxyc_schema.rotation_picker_notify(ids);
  RETURN NULL;
END $$;

CREATE TRIGGER rotation_picker_notify_identity
  AFTER INSERT OR UPDATE OR DELETE ON wxyc_schema.library_identity
  FOR EACH ROW EXECUTE FUNCTION wxyc_schema.rotation_picker_notify_identity();
