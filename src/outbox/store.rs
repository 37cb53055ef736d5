//! The outbox's operations as SQL over one connection, each run by the writer inside its own
//! savepoint of the batch transaction. Nothing here commits, waits or spawns.

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Claimed, DeliveryState, DeliverySummary, MessageId, MessageState, MessageSummary, NewMessage,
    OutboxError, OutboxOptions, Pending, QueueCounts, Recovered, RetryOutcome,
};

/// What one operation works with. `counts` is the writer's running copy of the per-state
/// counts; an operation updates it for each transition it makes, and the writer keeps the
/// update only if the operation succeeded and the batch committed.
pub(super) struct Ctx<'a> {
    pub conn: &'a Connection,
    pub opts: &'a OutboxOptions,
    pub counts: QueueCounts,
    /// Set when a text was redacted, so the writer schedules a WAL checkpoint.
    pub redacted: bool,
}

/// The row fields most operations check before changing a message.
struct Row {
    state: MessageState,
    parts: u8,
    parts_sent: u8,
    attempts: u32,
    modem: Option<String>,
}

impl Ctx<'_> {
    /// Stores a new message; with `claim_for`, claimed for that modem in the same insert
    /// (stored as `sending`, attempt 1) when it may be sent now, as [`Ctx::claim`] would
    /// claim it. Inserting it claimed touches neither queued index: two pages fewer in
    /// the accept's commit than an insert and a claim (issue 12 item 1).
    pub fn insert(
        &mut self,
        msg: NewMessage,
        plan: Option<&str>,
        claim_for: Option<&str>,
    ) -> Result<(MessageId, Option<Claimed>), OutboxError> {
        msg.check()?;
        let depth = self.counts.depth();
        if depth >= self.opts.max_depth {
            return Err(OutboxError::Full { depth });
        }
        // The claim's own condition: due now (a new message is) and not expired.
        let claim_for = claim_for.filter(|_| msg.expires_at_ms > msg.created_at_ms);
        let (state, attempts) = match claim_for {
            Some(_) => (MessageState::Sending, 1),
            None => (MessageState::Queued, 0),
        };
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO messages (recipient, body, parts, concat_ref, state, attempts,
                                   modem, created_at, expires_at, next_attempt_at, signature,
                                   plan)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?8, ?10, ?11)",
            )?
            .execute(params![
                msg.to,
                msg.text,
                msg.parts,
                msg.concat_ref,
                state.as_str(),
                attempts,
                claim_for,
                msg.created_at_ms,
                msg.expires_at_ms,
                msg.signature,
                plan
            ]);
        match inserted {
            Ok(_) => {
                self.counts.add(state, 1);
                let id = MessageId(self.conn.last_insert_rowid());
                let claimed = claim_for.map(|_| Claimed {
                    id,
                    to: msg.to,
                    text: msg.text,
                    parts: msg.parts,
                    parts_sent: 0,
                    concat_ref: msg.concat_ref,
                    attempt: 1,
                    created_at_ms: msg.created_at_ms,
                    expires_at_ms: msg.expires_at_ms,
                    previous_modem: None,
                    plan: plan.map(str::to_owned),
                });
                Ok((id, claimed))
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                Err(OutboxError::Duplicate)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The message accepted under `key` whose window has not passed at `now_ms`, if any.
    pub fn dedup_lookup(
        &mut self,
        key: &[u8],
        now_ms: i64,
    ) -> Result<Option<MessageId>, OutboxError> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT message_id FROM dedup WHERE key = ?1 AND expires_at > ?2")?
            .query_row(params![key, now_ms], |row| row.get(0))
            .optional()?;
        Ok(id.map(MessageId))
    }

    /// The message an earlier accept stored under the dedup `key`, if its window has not
    /// passed at `now_ms`; windows that have passed are deleted first.
    pub fn dedup_earlier(
        &mut self,
        key: &[u8],
        now_ms: i64,
    ) -> Result<Option<MessageId>, OutboxError> {
        self.conn
            .prepare_cached("DELETE FROM dedup WHERE expires_at <= ?1")?
            .execute([now_ms])?;
        let earlier: Option<i64> = self
            .conn
            .prepare_cached("SELECT message_id FROM dedup WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?;
        Ok(earlier.map(MessageId))
    }

    /// Notes that message `id` was accepted under the dedup `key` until `until_ms`.
    pub fn dedup_record(
        &mut self,
        key: &[u8],
        id: MessageId,
        until_ms: i64,
    ) -> Result<(), OutboxError> {
        self.conn
            .prepare_cached("INSERT INTO dedup (key, message_id, expires_at) VALUES (?1, ?2, ?3)")?
            .execute(params![key, id.0, until_ms])?;
        Ok(())
    }

    pub fn due(&mut self, now_ms: i64, limit: usize) -> Result<Vec<Pending>, OutboxError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, parts, parts_sent, attempts, next_attempt_at, expires_at, modem
             FROM messages
             WHERE state = 'queued' AND next_attempt_at <= ?1 AND expires_at > ?1
             ORDER BY next_attempt_at, id LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![now_ms, limit], |row| {
            Ok(Pending {
                id: MessageId(row.get(0)?),
                parts: row.get(1)?,
                parts_sent: row.get(2)?,
                attempts: row.get(3)?,
                next_attempt_at_ms: row.get(4)?,
                expires_at_ms: row.get(5)?,
                last_modem: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn claim_next(&mut self, modem: &str, now_ms: i64) -> Result<Option<Claimed>, OutboxError> {
        let id: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM messages
                 WHERE state = 'queued' AND next_attempt_at <= ?1 AND expires_at > ?1
                 ORDER BY next_attempt_at, id LIMIT 1",
            )?
            .query_row([now_ms], |row| row.get(0))
            .optional()?;
        match id {
            Some(id) => self.claim(MessageId(id), modem, now_ms),
            None => Ok(None),
        }
    }

    /// Claims the most overdue queued message for `modem` if it is a fresh one (never
    /// tried, no part sent): the one [`Ctx::due`] would list first, when no modem choice
    /// (avoiding a failed modem, resuming on the modem of the first parts) applies to it.
    pub fn claim_fresh_next(
        &mut self,
        modem: &str,
        now_ms: i64,
    ) -> Result<Option<Claimed>, OutboxError> {
        let first: Option<(i64, Option<String>, u8)> = self
            .conn
            .prepare_cached(
                "SELECT id, modem, parts_sent FROM messages
                 WHERE state = 'queued' AND next_attempt_at <= ?1 AND expires_at > ?1
                 ORDER BY next_attempt_at, id LIMIT 1",
            )?
            .query_row([now_ms], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        match first {
            Some((id, None, 0)) => self.claim(MessageId(id), modem, now_ms),
            _ => Ok(None),
        }
    }

    pub fn claim(
        &mut self,
        id: MessageId,
        modem: &str,
        now_ms: i64,
    ) -> Result<Option<Claimed>, OutboxError> {
        let claimed = self
            .conn
            .prepare_cached(
                "SELECT recipient, body, parts, parts_sent, concat_ref, attempts, created_at,
                        expires_at, modem, plan
                 FROM messages
                 WHERE id = ?1 AND state = 'queued' AND next_attempt_at <= ?2 AND expires_at > ?2",
            )?
            .query_row(params![id.0, now_ms], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, u8>(2)?,
                    row.get::<_, u8>(3)?,
                    row.get::<_, u16>(4)?,
                    row.get::<_, u32>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, i64>(7)?,
                    row.get::<_, Option<String>>(8)?,
                    row.get::<_, Option<String>>(9)?,
                ))
            })
            .optional()?;
        let Some((
            to,
            body,
            parts,
            parts_sent,
            concat_ref,
            attempts,
            created,
            expires,
            previous,
            plan,
        )) = claimed
        else {
            return Ok(None);
        };
        let text =
            body.ok_or_else(|| OutboxError::Storage(format!("message {id} has lost its text")))?;
        self.conn
            .prepare_cached(
                "UPDATE messages SET state = 'sending', attempts = attempts + 1, modem = ?2
             WHERE id = ?1",
            )?
            .execute(params![id.0, modem])?;
        self.counts
            .transition(MessageState::Queued, MessageState::Sending);
        Ok(Some(Claimed {
            id,
            to,
            text,
            parts,
            parts_sent,
            concat_ref,
            attempt: attempts.saturating_add(1),
            created_at_ms: created,
            expires_at_ms: expires,
            previous_modem: previous,
            plan,
        }))
    }

    pub fn mark_part_sent(
        &mut self,
        id: MessageId,
        part_index: u8,
        mr: u8,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        let row = self.sending_row(id)?;
        self.record_part(id, &row, part_index, mr, now_ms)
    }

    pub fn restart_whole(
        &mut self,
        id: MessageId,
        concat_ref: u16,
        why: &str,
    ) -> Result<bool, OutboxError> {
        let row = self.row(id)?;
        if row.state != MessageState::Queued {
            return Ok(false);
        }
        self.conn
            .prepare_cached("DELETE FROM parts WHERE message_id = ?1")?
            .execute([id.0])?;
        self.conn
            .prepare_cached(
                "UPDATE messages SET parts_sent = 0, concat_ref = ?2, last_error = ?3, modem = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id.0, concat_ref, why])?;
        Ok(true)
    }

    pub fn mark_sent(&mut self, id: MessageId, mrs: &[u8], now_ms: i64) -> Result<(), OutboxError> {
        let row = self.sending_row(id)?;
        let row = self.record_parts(id, row, mrs, now_ms)?;
        if row.parts_sent != row.parts {
            return Err(OutboxError::Invalid(format!(
                "message {id} has {} parts but only {} were recorded as sent",
                row.parts, row.parts_sent
            )));
        }
        self.conn
            .prepare_cached("UPDATE messages SET sent_at = ?2 WHERE id = ?1")?
            .execute(params![id.0, now_ms])?;
        self.finish(id, MessageState::Sending, MessageState::Sent, now_ms, None)
    }

    pub fn mark_retry(
        &mut self,
        id: MessageId,
        error: &str,
        sent: &[u8],
        now_ms: i64,
    ) -> Result<RetryOutcome, OutboxError> {
        let row = self.sending_row(id)?;
        let row = self.record_parts(id, row, sent, now_ms)?;
        match self.opts.retry.next_attempt_at(row.attempts, now_ms) {
            Some(at_ms) => {
                self.conn
                    .prepare_cached(
                        "UPDATE messages SET state = 'queued', next_attempt_at = ?2,
                                             last_error = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![id.0, at_ms, error])?;
                self.counts
                    .transition(MessageState::Sending, MessageState::Queued);
                Ok(RetryOutcome::Scheduled { at_ms })
            }
            None => {
                let error = format!("gave up after {} attempts: {error}", row.attempts);
                self.finish(
                    id,
                    MessageState::Sending,
                    MessageState::Failed,
                    now_ms,
                    Some(&error),
                )?;
                Ok(RetryOutcome::GaveUp)
            }
        }
    }

    /// Ends a send as failed (`Failed`) or of unknown outcome (`Unknown`).
    pub fn mark_final(
        &mut self,
        id: MessageId,
        to: MessageState,
        error: &str,
        sent: &[u8],
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        let row = self.sending_row(id)?;
        self.record_parts(id, row, sent, now_ms)?;
        self.finish(id, MessageState::Sending, to, now_ms, Some(error))
    }

    pub fn expire_due(&mut self, now_ms: i64) -> Result<Vec<MessageId>, OutboxError> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM messages WHERE state = 'queued' AND expires_at <= ?1 ORDER BY id",
            )?
            .query_map([now_ms], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut expired = Vec::with_capacity(ids.len());
        for id in ids {
            self.finish(
                MessageId(id),
                MessageState::Queued,
                MessageState::Expired,
                now_ms,
                None,
            )?;
            expired.push(MessageId(id));
        }
        Ok(expired)
    }

    pub fn record_delivery(
        &mut self,
        modem: &str,
        mr: u8,
        status_code: u8,
        state: DeliveryState,
        now_ms: i64,
    ) -> Result<Option<MessageId>, OutboxError> {
        let window = i64::try_from(self.opts.delivery_window.as_millis()).unwrap_or(i64::MAX);
        // Message references wrap after 256 parts per modem: the most recent part with
        // this reference is the one the report is about.
        let part: Option<(i64, u8)> = self
            .conn
            .prepare_cached(
                "SELECT message_id, part_index FROM parts
                 WHERE modem = ?1 AND mr = ?2 AND sent_at >= ?3
                 ORDER BY sent_at DESC, message_id DESC LIMIT 1",
            )?
            .query_row(params![modem, mr, now_ms.saturating_sub(window)], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let Some((message_id, part_index)) = part else {
            return Ok(None);
        };
        self.conn
            .prepare_cached(
                "UPDATE parts SET delivery = ?3, status_code = ?4, reported_at = ?5
                 WHERE message_id = ?1 AND part_index = ?2",
            )?
            .execute(params![
                message_id,
                part_index,
                state.as_str(),
                status_code,
                now_ms
            ])?;
        Ok(Some(MessageId(message_id)))
    }

    pub fn recover(&mut self, now_ms: i64) -> Result<Recovered, OutboxError> {
        // Every part recorded: the network has the whole message; only the final
        // bookkeeping was cut short. Final, not resent.
        let complete: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM messages WHERE state = 'sending' AND parts_sent >= parts",
            )?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        for &id in &complete {
            self.conn
                .prepare_cached(
                    "UPDATE messages SET sent_at = coalesce(sent_at, ?2) WHERE id = ?1",
                )?
                .execute(params![id, now_ms])?;
            self.finish(
                MessageId(id),
                MessageState::Sending,
                MessageState::Sent,
                now_ms,
                None,
            )?;
        }
        let requeued = self
            .conn
            .prepare_cached(
                "UPDATE messages SET state = 'queued', next_attempt_at = ?1
                 WHERE state = 'sending'",
            )?
            .execute([now_ms])? as u64;
        self.counts.sending = self.counts.sending.saturating_sub(requeued);
        self.counts.queued += requeued;
        Ok(Recovered {
            requeued,
            completed: complete.len() as u64,
            queued: self.counts.queued,
        })
    }

    pub fn next_due_at(&mut self, now_ms: i64) -> Result<Option<i64>, OutboxError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT min(t) FROM (
                     SELECT min(next_attempt_at) AS t FROM messages
                         WHERE state = 'queued' AND next_attempt_at > ?1
                     UNION ALL
                     SELECT min(expires_at) AS t FROM messages WHERE state = 'queued')",
            )?
            .query_row([now_ms], |row| row.get(0))?)
    }

    /// Messages sent per minute over `[from_ms, to_ms)`, oldest minute first.
    pub fn sent_per_minute(&mut self, from_ms: i64, to_ms: i64) -> Result<Vec<u64>, OutboxError> {
        let minutes = usize::try_from((to_ms - from_ms).max(0) / 60_000).unwrap_or(0);
        let mut buckets = vec![0u64; minutes];
        let mut stmt = self.conn.prepare_cached(
            "SELECT (sent_at - ?1) / 60000, count(*) FROM messages
             WHERE sent_at >= ?1 AND sent_at < ?2 GROUP BY 1",
        )?;
        let rows = stmt.query_map(params![from_ms, to_ms], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (minute, count) = row?;
            if let Some(bucket) = usize::try_from(minute)
                .ok()
                .and_then(|m| buckets.get_mut(m))
            {
                *bucket = u64::try_from(count).unwrap_or(0);
            }
        }
        Ok(buckets)
    }

    pub fn summaries(
        &mut self,
        id: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<MessageSummary>, OutboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.id, m.recipient, m.state, m.attempts, m.parts, m.parts_sent, m.created_at,
                    m.sent_at, m.final_at, m.modem, m.last_error,
                    count(p.part_index),
                    coalesce(sum(p.delivery = 'delivered'), 0),
                    coalesce(sum(p.delivery = 'failed'), 0),
                    (SELECT status_code FROM parts q
                         WHERE q.message_id = m.id AND q.reported_at IS NOT NULL
                         ORDER BY q.reported_at DESC, q.part_index DESC LIMIT 1),
                    max(p.reported_at)
             FROM (SELECT * FROM messages WHERE ?1 IS NULL OR id = ?1
                   ORDER BY id DESC LIMIT ?2) AS m
             LEFT JOIN parts AS p ON p.message_id = m.id
             GROUP BY m.id
             ORDER BY m.id DESC",
        )?;
        let rows = stmt.query_map(params![id.map(|id| id.0), limit], |row| {
            let state: String = row.get(2)?;
            let recorded: u8 = row.get(11)?;
            let delivered: u8 = row.get(12)?;
            let failed: u8 = row.get(13)?;
            let parts: u8 = row.get(4)?;
            let number: String = row.get(1)?;
            let last_status: Option<u8> = row.get(14)?;
            let last_report_at_ms: Option<i64> = row.get(15)?;
            Ok((
                state,
                MessageSummary {
                    id: MessageId(row.get(0)?),
                    // Final rows hold the masked form already; masking it again is a no-op.
                    to_masked: crate::mask::phone(&number),
                    state: MessageState::Queued,
                    attempts: row.get(3)?,
                    parts,
                    parts_sent: row.get(5)?,
                    created_at_ms: row.get(6)?,
                    sent_at_ms: row.get(7)?,
                    final_at_ms: row.get(8)?,
                    modem: row.get(9)?,
                    node: None,
                    last_error: row.get(10)?,
                    delivery: (recorded > 0).then_some(DeliverySummary {
                        state: DeliveryState::of_parts(
                            parts as u64,
                            delivered as u64,
                            failed as u64,
                        ),
                        parts_delivered: delivered,
                        parts_failed: failed,
                        last_status,
                        last_report_at_ms,
                    }),
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (state, mut summary) = row?;
            summary.state = MessageState::parse(&state)?;
            out.push(summary);
        }
        Ok(out)
    }

    pub fn purge(&mut self, older_than_ms: i64) -> Result<u64, OutboxError> {
        let gone: Vec<(String, u64)> = self
            .conn
            .prepare_cached(
                "SELECT state, count(*) FROM messages
                 WHERE final_at IS NOT NULL AND final_at < ?1 GROUP BY state",
            )?
            .query_map([older_than_ms], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM messages WHERE final_at IS NOT NULL AND final_at < ?1")?
            .execute([older_than_ms])? as u64;
        for (state, count) in gone {
            self.counts.remove(MessageState::parse(&state)?, count);
        }
        Ok(deleted)
    }

    /// Reads the per-state counts (at open): six rows kept by triggers, not a scan of the
    /// messages, so opening costs the same whatever the history holds.
    pub fn load_counts(conn: &Connection) -> Result<QueueCounts, OutboxError> {
        let mut counts = QueueCounts::default();
        let mut stmt = conn.prepare("SELECT state, n FROM state_counts")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (state, count) = row?;
            counts.add(MessageState::parse(&state)?, count.max(0) as u64);
        }
        Ok(counts)
    }

    fn row(&self, id: MessageId) -> Result<Row, OutboxError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT state, parts, parts_sent, attempts, modem FROM messages WHERE id = ?1",
            )?
            .query_row([id.0], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    Row {
                        state: MessageState::Queued,
                        parts: row.get(1)?,
                        parts_sent: row.get(2)?,
                        attempts: row.get(3)?,
                        modem: row.get(4)?,
                    },
                ))
            })
            .optional()?;
        let (state, mut row) = row.ok_or(OutboxError::NotFound(id))?;
        row.state = MessageState::parse(&state)?;
        Ok(row)
    }

    fn sending_row(&self, id: MessageId) -> Result<Row, OutboxError> {
        let row = self.row(id)?;
        if row.state != MessageState::Sending {
            return Err(OutboxError::WrongState {
                id,
                state: row.state,
                expected: MessageState::Sending,
            });
        }
        Ok(row)
    }

    /// Records the parts of `mrs` as the next ones sent, in order.
    fn record_parts(
        &mut self,
        id: MessageId,
        mut row: Row,
        mrs: &[u8],
        now_ms: i64,
    ) -> Result<Row, OutboxError> {
        for &mr in mrs {
            let index = row.parts_sent;
            self.record_part(id, &row, index, mr, now_ms)?;
            row.parts_sent = index.saturating_add(1);
        }
        Ok(row)
    }

    fn record_part(
        &mut self,
        id: MessageId,
        row: &Row,
        part_index: u8,
        mr: u8,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        super::check_next_part(id, row.parts, row.parts_sent, part_index)?;
        let modem = row.modem.as_deref().unwrap_or("");
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO parts (message_id, part_index, modem, mr, sent_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id.0, part_index, modem, mr, now_ms])?;
        self.conn
            .prepare_cached("UPDATE messages SET parts_sent = ?2 WHERE id = ?1")?
            .execute(params![id.0, part_index + 1])?;
        Ok(())
    }

    /// Moves a message to a final state and redacts it: the text is dropped and the number
    /// replaced by its masked form, in the same transaction.
    fn finish(
        &mut self,
        id: MessageId,
        from: MessageState,
        to: MessageState,
        now_ms: i64,
        error: Option<&str>,
    ) -> Result<(), OutboxError> {
        let number: String = self
            .conn
            .prepare_cached("SELECT recipient FROM messages WHERE id = ?1")?
            .query_row([id.0], |row| row.get(0))?;
        self.conn
            .prepare_cached(
                "UPDATE messages
             SET state = ?2, final_at = ?3, body = NULL, recipient = ?4,
                 last_error = coalesce(?5, last_error)
             WHERE id = ?1",
            )?
            .execute(params![
                id.0,
                to.as_str(),
                now_ms,
                crate::mask::phone(&number),
                error
            ])?;
        self.counts.transition(from, to);
        self.redacted = true;
        Ok(())
    }
}
