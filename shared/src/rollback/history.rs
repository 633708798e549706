//! What this function instance remembers across events: the deployments it stopped (so a
//! duplicate event stops nothing twice) and the latest state of each alarm it saw (so an ALARM
//! delivered after a later OK is recognised as stale). Bounded, so a fleet's worth of alarms
//! cannot grow it without limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// A deployment stopped by this process is not stopped again for this long.
const REMEMBER_STOPS: Duration = Duration::from_secs(30 * 60);
/// At most this many entries of each kind are kept; the oldest go first.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct History {
    stops: Mutex<HashMap<String, Instant>>,
    /// Alarm name → (state, when it was entered).
    states: Mutex<HashMap<String, (String, SystemTime)>>,
}

impl History {
    /// How long ago this process requested the stop of `key`, if recently.
    pub fn stopped_recently(&self, key: &str) -> Option<Duration> {
        let stops = self.stops.lock().ok()?;
        stops
            .get(key)
            .map(|at| at.elapsed())
            .filter(|age| *age < REMEMBER_STOPS)
    }

    pub fn remember_stop(&self, key: String) {
        if let Ok(mut stops) = self.stops.lock() {
            stops.retain(|_, at| at.elapsed() < REMEMBER_STOPS);
            if stops.len() >= CAPACITY {
                if let Some(oldest) = stops
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
                {
                    stops.remove(&oldest);
                }
            }
            stops.insert(key, Instant::now());
        }
    }

    /// Records that `alarm` entered `state` at `at`, unless a later state is already known.
    pub fn record_state(&self, alarm: &str, state: &str, at: SystemTime) {
        if let Ok(mut states) = self.states.lock() {
            if states.get(alarm).is_some_and(|(_, known)| *known >= at) {
                return;
            }
            if states.len() >= CAPACITY && !states.contains_key(alarm) {
                if let Some(oldest) = states
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                {
                    states.remove(&oldest);
                }
            }
            states.insert(alarm.to_string(), (state.to_string(), at));
        }
    }

    /// A state other than ALARM that `alarm` entered after `alarm_at`, if this process saw one.
    pub fn left_alarm_after(
        &self,
        alarm: &str,
        alarm_at: SystemTime,
    ) -> Option<(String, SystemTime)> {
        let states = self.states.lock().ok()?;
        states
            .get(alarm)
            .filter(|(state, at)| state != "ALARM" && *at > alarm_at)
            .cloned()
    }
}
