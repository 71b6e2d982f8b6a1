//! The measured runs: idle joined connections, relayed signals (paced or
//! closed-loop), and chat fan-out in full rooms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::dialect::{self, now_ns, Joined, Ws};
use crate::stats::Latencies;
use crate::target::{own_cpu, Server};
use crate::BenchError;

/// Connections opened at once while setting up.
const OPENING_CONCURRENCY: usize = 64;
/// Longest wait for messages still in flight when a window closes.
const DRAIN: Duration = Duration::from_secs(3);

/// Memory and join latency while idle connections pile up.
#[derive(Debug)]
pub struct Idle {
    /// (connections, server RSS in bytes) after each step.
    pub rss: Vec<(usize, u64)>,
    pub join: Latencies,
}

/// Opens joined connections in rooms of 8 up to each count in `steps`,
/// reading the server's RSS after each step once it has settled.
pub async fn idle(server: &Server, steps: &[usize]) -> Result<Idle, BenchError> {
    let (stop, stopped) = watch::channel(false);
    let mut held = JoinSet::new();
    let mut join = Latencies::default();
    let mut rss = vec![(0, server.rss()?)];
    let mut opened = 0;
    for &count in steps {
        let joined = open_all(server, opened..count, |i| {
            (format!("idle{}", i / 8), format!("u{i}"))
        })
        .await?;
        for j in joined {
            join.push(j.took.as_nanos() as u64);
            held.spawn(hold(j.ws, stopped.clone()));
        }
        opened = count;
        // Let the server (and node's garbage collector) settle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        rss.push((count, server.rss()?));
    }
    let _ = stop.send(true);
    held.join_all().await;
    Ok(Idle { rss, join })
}

/// Keeps a connection alive (answering pings) until told to stop.
async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            message = ws.next() => if !matches!(message, Some(Ok(_))) { return },
            _ = stop.changed() => return,
        }
    }
}

/// Joins `names(i)` for every `i`, a few at a time.
async fn open_all(
    server: &Server,
    range: std::ops::Range<usize>,
    names: impl Fn(usize) -> (String, String),
) -> Result<Vec<Joined>, BenchError> {
    let permits = Arc::new(Semaphore::new(OPENING_CONCURRENCY));
    let mut opening = JoinSet::new();
    for i in range {
        let permit = permits.clone().acquire_owned().await?;
        let (kind, addr) = (server.kind, server.addr_for(i));
        let (room, name) = names(i);
        opening.spawn(async move {
            let joined = dialect::join(kind, addr, &room, &name).await;
            drop(permit);
            joined.map(|j| (i, j))
        });
    }
    let mut joined = Vec::new();
    while let Some(result) = opening.join_next().await {
        joined.push(result??);
    }
    joined.sort_by_key(|(i, _)| *i);
    Ok(joined.into_iter().map(|(_, j)| j).collect())
}

/// The measurement window of a run, in both clocks.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
    start_ns: u64,
    end_ns: u64,
}

impl Window {
    fn after(warmup: Duration, length: Duration) -> Window {
        let (now, now_ns) = (Instant::now(), now_ns());
        Window {
            start: now + warmup,
            end: now + warmup + length,
            start_ns: now_ns + warmup.as_nanos() as u64,
            end_ns: now_ns + (warmup + length).as_nanos() as u64,
        }
    }

    fn contains(&self, ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&ns)
    }

    /// Samples CPU at both ends of the window, then waits (bounded) for the
    /// messages of the window still in flight.
    async fn measure(
        &self,
        server: &Server,
        drained: impl Fn() -> bool,
    ) -> Result<Cpu, BenchError> {
        tokio::time::sleep_until(self.start).await;
        let (server0, redis0, own0) = (server.cpu()?, server.redis_cpu()?, own_cpu()?);
        tokio::time::sleep_until(self.end).await;
        let (server1, redis1, own1) = (server.cpu()?, server.redis_cpu()?, own_cpu()?);
        let deadline = Instant::now() + DRAIN;
        while !drained() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Cpu {
            server: server1.saturating_sub(server0),
            redis: redis1.saturating_sub(redis0),
            client: own1.saturating_sub(own0),
        })
    }
}

/// CPU used during a window.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub server: Duration,
    /// A cluster's Redis (zero without one).
    pub redis: Duration,
    pub client: Duration,
}

/// How senders pace themselves.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Open loop: this many messages a second over all senders, evenly spread.
    Rate(f64),
    /// Closed loop: each sender keeps this many messages in flight.
    InFlight(usize),
}

/// The outcome of a relay or fan-out run.
#[derive(Debug)]
pub struct Run {
    /// Messages sent in the window (signals, or chat lines).
    pub sent: u64,
    /// Deliveries of them that arrived.
    pub delivered: u64,
    /// Deliveries expected (sent × recipients).
    pub expected: u64,
    pub latency: Latencies,
    pub cpu: Cpu,
    pub window: Duration,
}

/// `pairs` senders each relaying signals to their own receiver in a room of two.
pub async fn relay(
    server: &Server,
    pairs: usize,
    pace: Pace,
    warmup: Duration,
    length: Duration,
) -> Result<Run, BenchError> {
    let kind = server.kind;
    let mut joined = open_all(server, 0..pairs * 2, |i| {
        (format!("pair{}", i / 2), format!("p{i}"))
    })
    .await?
    .into_iter();
    let window = Window::after(warmup, length);
    let sent = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut senders = JoinSet::new();
    let mut receivers = JoinSet::new();
    let mut index = 0;
    while let (Some(mut a), Some(b)) = (joined.next(), joined.next()) {
        let credit = match pace {
            Pace::InFlight(n) => Some(Arc::new(Semaphore::new(n))),
            Pace::Rate(_) => None,
        };
        let first = match pace {
            Pace::Rate(rate) => {
                window.start - warmup + Duration::from_secs_f64(index as f64 / rate)
            }
            Pace::InFlight(_) => window.start - warmup,
        };
        let period = match pace {
            Pace::Rate(rate) => Duration::from_secs_f64(pairs as f64 / rate),
            Pace::InFlight(_) => Duration::from_secs(1),
        };
        index += 1;
        let (sent, to, sender_credit) = (sent.clone(), b.id.clone(), credit.clone());
        senders.spawn(async move {
            let mut ticks = tokio::time::interval_at(first, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
            loop {
                tokio::select! {
                    _ = ticks.tick(), if sender_credit.is_none() => {}
                    permit = acquire(sender_credit.as_deref()), if sender_credit.is_some() => permit.forget(),
                    message = a.ws.next() => match message {
                        Some(Ok(_)) => continue,
                        _ => return,
                    },
                    _ = tokio::time::sleep_until(window.end) => return,
                }
                let at = now_ns();
                if at >= window.end_ns || a.ws.send(Message::text(dialect::signal(kind, &to, at))).await.is_err() {
                    return;
                }
                if window.contains(at) {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        receivers.spawn(receive(
            b.ws,
            window,
            delivered.clone(),
            credit,
            stopped.clone(),
        ));
    }
    let cpu = window
        .measure(server, || {
            delivered.load(Ordering::Relaxed) >= sent.load(Ordering::Relaxed)
        })
        .await?;
    let _ = stop.send(true);
    senders.join_all().await;
    let latency: Latencies = receivers.join_all().await.into_iter().collect();
    let sent = sent.load(Ordering::Relaxed);
    Ok(Run {
        sent,
        delivered: delivered.load(Ordering::Relaxed),
        expected: sent,
        latency,
        cpu,
        window: length,
    })
}

async fn acquire(credit: Option<&Semaphore>) -> tokio::sync::SemaphorePermit<'_> {
    match credit.map(Semaphore::acquire) {
        Some(acquiring) => match acquiring.await {
            Ok(permit) => permit,
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The latency of a received text if it is a measured message of the
/// window (and not one of the member's own chat lines, marked `own_tag`).
fn measured(text: &str, window: &Window, own_tag: Option<&str>) -> Option<u64> {
    let sent_at = dialect::marker(text)?;
    if own_tag.is_some_and(|tag| text.contains(tag)) || !window.contains(sent_at) {
        return None;
    }
    Some(now_ns().saturating_sub(sent_at))
}

/// Reads a receiver's socket, timing measured messages of the window, until
/// told to stop. Every measured message returns a credit to its sender.
async fn receive(
    mut ws: Ws,
    window: Window,
    delivered: Arc<AtomicU64>,
    credit: Option<Arc<Semaphore>>,
    mut stop: watch::Receiver<bool>,
) -> Latencies {
    let mut latency = Latencies::default();
    loop {
        let text = tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                _ => return latency,
            },
            _ = stop.changed() => return latency,
        };
        if let (Some(credit), Some(_)) = (&credit, dialect::marker(&text)) {
            credit.add_permits(1);
        }
        if let Some(nanos) = measured(&text, &window, None) {
            latency.push(nanos);
            delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Rooms of 8 where every member chats at `per_member` lines a second.
pub async fn fanout(
    server: &Server,
    rooms: usize,
    per_member: f64,
    warmup: Duration,
    length: Duration,
) -> Result<Run, BenchError> {
    const MEMBERS: usize = 8;
    let kind = server.kind;
    // Members of a room join one after the other so that ids are known.
    let mut members = Vec::new();
    for room in 0..rooms {
        let joined = open_all(server, room * MEMBERS..(room + 1) * MEMBERS, |i| {
            (format!("fan{}", i / MEMBERS), format!("f{i}"))
        })
        .await?;
        let ids: Vec<String> = joined.iter().map(|j| j.id.clone()).collect();
        for (n, j) in joined.into_iter().enumerate() {
            let others: Vec<String> = ids
                .iter()
                .enumerate()
                .filter(|(m, _)| *m != n)
                .map(|(_, id)| id.clone())
                .collect();
            members.push((j.ws, others));
        }
    }
    let total_rate = per_member * members.len() as f64;
    let window = Window::after(warmup, length);
    let sent = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (me, (mut ws, others)) in members.into_iter().enumerate() {
        let first = window.start - warmup + Duration::from_secs_f64(me as f64 / total_rate);
        let period = Duration::from_secs_f64(1.0 / per_member);
        let (sent, delivered, mut stopped) = (sent.clone(), delivered.clone(), stopped.clone());
        let own = dialect::own_tag(me);
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval_at(first, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
            let mut latency = Latencies::default();
            loop {
                let text = tokio::select! {
                    _ = ticks.tick() => {
                        let at = now_ns();
                        if at < window.end_ns {
                            for line in dialect::chat(kind, me, &others, at) {
                                if ws.send(Message::text(line)).await.is_err() {
                                    return latency;
                                }
                            }
                            if window.contains(at) {
                                sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        continue;
                    }
                    message = ws.next() => match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(_)) => continue,
                        _ => return latency,
                    },
                    _ = stopped.changed() => return latency,
                };
                if let Some(nanos) = measured(&text, &window, Some(&own)) {
                    latency.push(nanos);
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let recipients = (MEMBERS - 1) as u64;
    let cpu = window
        .measure(server, || {
            delivered.load(Ordering::Relaxed) >= sent.load(Ordering::Relaxed) * recipients
        })
        .await?;
    let _ = stop.send(true);
    let latency: Latencies = tasks.join_all().await.into_iter().collect();
    let sent = sent.load(Ordering::Relaxed);
    Ok(Run {
        sent,
        delivered: delivered.load(Ordering::Relaxed),
        expected: sent * recipients,
        latency,
        cpu,
        window: length,
    })
}
