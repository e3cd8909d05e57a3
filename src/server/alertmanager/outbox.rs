//! What is to be posted to one Alertmanager, decided without I/O: the alerts firing now (less
//! those a silence covers), the ones that ended or a silence now covers (posted ended), the
//! resend of everything firing every [`RESEND_INTERVAL`], and the queue of what waits to be
//! posted, bounded at [`MAX_PENDING`].

use super::{Event, MAX_BATCH, MAX_PENDING, PostableAlert, RESEND_INTERVAL, ended, firing};
use crate::server::firing::{AlertKey, FiringAlert};
use crate::server::silence::Silence;
use crate::store::AlertRecord;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// What is to be posted to one Alertmanager: no I/O, so every case is a plain test.
#[derive(Debug)]
pub struct Outbox {
    generator_base: Option<String>,
    /// What fires now, as the server says.
    firing: HashMap<AlertKey, FiringAlert>,
    /// Alerts that stopped firing, to post resolved.
    ended: Vec<(FiringAlert, u64)>,
    silences: Vec<Silence>,
    /// What Alertmanager was last told fires, by labels.
    posted: BTreeMap<BTreeMap<String, String>, PostableAlert>,
    pending: VecDeque<PostableAlert>,
    next_resend_ms: u64,
    /// Alerts dropped since the last call of [`Outbox::take_dropped`].
    dropped: u64,
}

impl Outbox {
    pub fn new(generator_base: Option<String>) -> Outbox {
        Outbox {
            generator_base,
            firing: HashMap::new(),
            ended: Vec::new(),
            silences: Vec::new(),
            posted: BTreeMap::new(),
            pending: VecDeque::new(),
            next_resend_ms: 0,
            dropped: 0,
        }
    }

    pub fn accept(&mut self, event: Event) {
        match event {
            Event::Fired(alert) => {
                self.firing.insert(AlertKey::of(&alert.record), alert);
            }
            Event::Ended { alert, at_ms } => {
                let key = AlertKey::of(&alert.record);
                if self
                    .firing
                    .get(&key)
                    .is_some_and(|a| a.record.alert_id == alert.record.alert_id)
                {
                    self.firing.remove(&key);
                }
                self.ended.push((alert, at_ms));
            }
            Event::Silences(list) => self.silences = list,
        }
    }

    fn silenced(&self, record: &AlertRecord, now_ms: u64) -> bool {
        self.silences.iter().any(|s| s.silences(record, now_ms))
    }

    /// Brings what is to be posted up to date at `now_ms`: alerts that ended are posted
    /// resolved, new ones (and those a silence let go) firing, those a silence now covers
    /// ended, and every resend interval all that fire again.
    pub fn update(&mut self, now_ms: u64) {
        for (alert, at_ms) in std::mem::take(&mut self.ended) {
            let posted = firing(&alert, now_ms, self.generator_base.as_deref());
            let labels = posted.labels.clone();
            // Posted resolved even if it was never posted here: it may have been before a
            // restart. Not when the same labels fire again already (a new episode).
            let again = self
                .firing
                .values()
                .any(|a| super::labels(&a.record) == labels);
            if !again {
                self.posted.remove(&labels);
                self.push(ended(posted, at_ms));
            }
        }
        let mut wanted: BTreeMap<BTreeMap<String, String>, PostableAlert> = BTreeMap::new();
        for alert in self.firing.values() {
            if self.silenced(&alert.record, now_ms) {
                continue;
            }
            let p = firing(alert, now_ms, self.generator_base.as_deref());
            wanted.insert(p.labels.clone(), p);
        }
        let resend = now_ms >= self.next_resend_ms;
        let gone: Vec<PostableAlert> = self
            .posted
            .iter()
            .filter(|(labels, _)| !wanted.contains_key(*labels))
            .map(|(_, p)| p.clone())
            .collect();
        for p in gone {
            self.push(ended(p, now_ms));
        }
        let mut fresh: Vec<PostableAlert> = wanted
            .iter()
            .filter(|(labels, _)| resend || !self.posted.contains_key(*labels))
            .map(|(_, p)| p.clone())
            .collect();
        fresh.sort_by(|a, b| a.starts_at.cmp(&b.starts_at));
        for p in fresh {
            self.push(p);
        }
        if resend {
            self.next_resend_ms = now_ms + RESEND_INTERVAL.as_millis() as u64;
        }
        self.posted = wanted;
    }

    /// When [`Outbox::update`] has something to do next without a new event: the next resend
    /// or the next start or end of a silence.
    pub fn next_update(&self, now_ms: u64) -> u64 {
        let silence = self
            .silences
            .iter()
            .flat_map(|s| [s.starts_ms, s.ends_ms])
            .filter(|t| *t > now_ms)
            .min()
            .unwrap_or(u64::MAX);
        self.next_resend_ms.max(now_ms).min(silence)
    }

    pub(super) fn push(&mut self, alert: PostableAlert) {
        self.pending.push_back(alert);
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
        }
    }

    /// The next alerts to post, at most [`MAX_BATCH`], oldest first.
    pub fn take_batch(&mut self) -> Vec<PostableAlert> {
        let n = self.pending.len().min(MAX_BATCH);
        self.pending.drain(..n).collect()
    }

    /// Puts back a batch whose post failed, ahead of what came since.
    pub fn requeue(&mut self, batch: Vec<PostableAlert>) {
        for alert in batch.into_iter().rev() {
            self.pending.push_front(alert);
        }
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_back();
            self.dropped += 1;
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Alerts Alertmanager was told fire.
    pub fn firing(&self) -> usize {
        self.posted.len()
    }

    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}
