-- The service's own objects, all in its own schema: persisted picker answers (every host loads them
-- at start, so a deploy costs no LML calls), the fleet-wide LML token bucket, and the notification
-- that tells every worker of every host that new answers were written.

CREATE SEQUENCE __SERVICE__.answer_seq;

-- One row per rotation row: its answer and the fingerprint of the inputs it was computed from.
-- An answer whose inputs no longer match the station row is never served (see backend/db/rotation.py).
-- outcome 'lml_error' is not an answer but the walk's retry schedule: LML could not answer, try
-- again after expires_at (attempts so far drive the backoff), so a restart does not retry early.
CREATE TABLE __SERVICE__.row_answer (
  rotation_id integer PRIMARY KEY,
  inputs      text        NOT NULL,
  outcome     text        NOT NULL,
  release_id  integer,
  tracks      text,
  attempts    integer     NOT NULL DEFAULT 0,
  computed_at timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  seq         bigint      NOT NULL DEFAULT nextval('__SERVICE__.answer_seq')
);
CREATE INDEX row_answer_seq_idx ON __SERVICE__.row_answer (seq);
CREATE INDEX row_answer_expires_at_idx ON __SERVICE__.row_answer (expires_at);

-- One row per Discogs release: its projected tracklist as served (JSON text) when status is 'ok';
-- 'not_found' is an LML 404; 'error' is the walk's retry schedule (like row_answer's 'lml_error').
CREATE TABLE __SERVICE__.release_answer (
  release_id  integer PRIMARY KEY,
  status      text        NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'not_found', 'error')),
  tracks      text,
  attempts    integer     NOT NULL DEFAULT 0,
  computed_at timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  seq         bigint      NOT NULL DEFAULT nextval('__SERVICE__.answer_seq')
);
CREATE INDEX release_answer_seq_idx ON __SERVICE__.release_answer (seq);

-- LML's answer to one lookup key (normalised artist and album) for a few minutes: identical lookups
-- from any process of any host share one LML call (a walker that takes over after another died
-- does not ask again for a key the dead one already asked).
CREATE TABLE __SERVICE__.lookup_answer (
  artist     text        NOT NULL,
  album      text        NOT NULL,
  response   jsonb       NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (artist, album)
);

CREATE FUNCTION __SERVICE__.notify_answers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('__SERVICE___answers', TG_TABLE_NAME);
  RETURN NULL;
END $$;

CREATE TRIGGER notify_row_answers AFTER INSERT OR UPDATE ON __SERVICE__.row_answer
  FOR EACH STATEMENT EXECUTE FUNCTION __SERVICE__.notify_answers();
CREATE TRIGGER notify_release_answers AFTER INSERT OR UPDATE ON __SERVICE__.release_answer
  FOR EACH STATEMENT EXECUTE FUNCTION __SERVICE__.notify_answers();

-- The fleet's walker: which host holds the walk (a session advisory lock decides) and its progress,
-- written every few seconds, so any worker of any host can report it.
CREATE TABLE __SERVICE__.walker (
  id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
  host       text        NOT NULL,
  pid        integer     NOT NULL,
  since      timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  status     jsonb       NOT NULL
);

-- The fleet's LML token bucket: capacity and refill are the caller's rate per minute. A caller that
-- must leave `p_keep` tokens for others (the walk keeps a reserve for live DJs) only takes one when
-- more than that are available. Returns 0 when a token was taken, else the seconds until one could be.
CREATE TABLE __SERVICE__.lml_budget (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),
  tokens      double precision NOT NULL,
  refilled_at timestamptz      NOT NULL
);
INSERT INTO __SERVICE__.lml_budget (id, tokens, refilled_at) VALUES (true, 0, '2000-01-01T00:00:00Z');

CREATE FUNCTION __SERVICE__.take_lml_token(p_rate double precision, p_keep double precision)
RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
  v_now    timestamptz := clock_timestamp();
  v_tokens double precision;
BEGIN
  SELECT least(p_rate, tokens + greatest(0, extract(epoch FROM v_now - refilled_at)) * p_rate / 60.0)
    INTO v_tokens
    FROM __SERVICE__.lml_budget WHERE id FOR UPDATE;
  IF v_tokens >= 1 + p_keep THEN
    UPDATE __SERVICE__.lml_budget SET tokens = v_tokens - 1, refilled_at = v_now WHERE id;
    RETURN 0;
  END IF;
  UPDATE __SERVICE__.lml_budget SET tokens = v_tokens, refilled_at = v_now WHERE id;
  RETURN (1 + p_keep - v_tokens) * 60.0 / p_rate;
END $$;
