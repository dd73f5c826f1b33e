//! The device loop's one timer, on a timerfd.
//!
//! It wakes the daemon when its next deadline (LCP echo, restart timers,
//! port scans, hold-off) is due, and at no other time. tokio's timer wheel
//! would do the same work but wakes early to move a long sleep down its
//! levels: on an idle link with a 5 s occupancy check that was three
//! wake-ups per due timer instead of one.

use std::io;
use std::time::Instant;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

/// tokio registers what implements AsRawFd; nix's TimerFd has AsFd only.
struct Registered(TimerFd);

impl std::os::fd::AsRawFd for Registered {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

pub struct DeadlineTimer {
    fd: AsyncFd<Registered>,
    /// The deadline the timerfd is set for; None when unset or fired.
    armed: Option<Instant>,
}

impl DeadlineTimer {
    /// On CLOCK_MONOTONIC, the clock `std::time::Instant` reads on Linux.
    pub fn new() -> io::Result<DeadlineTimer> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(DeadlineTimer {
            // SAFETY: the TimerFd owns one descriptor, open and unchanged
            // until it is dropped with the AsyncFd that owns it from here on.
            fd: unsafe { AsyncFd::register(Registered(timer)) }.map_err(io::Error::from)?,
            armed: None,
        })
    }

    /// Waits until `deadline` (forever for None). Cancel-safe: dropped
    /// unfinished (another branch of a `select!` won), the timer stays set
    /// and the next call with the same deadline does not set it again.
    pub async fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        if deadline != self.armed {
            match deadline {
                Some(at) => {
                    // A zero expiration would disarm it: at least 1 ns.
                    let after = at
                        .saturating_duration_since(Instant::now())
                        .max(std::time::Duration::from_nanos(1));
                    self.fd.get_ref().0.set(
                        Expiration::OneShot(TimeSpec::from_duration(after)),
                        TimerSetTimeFlags::empty(),
                    )?;
                }
                None => self.fd.get_ref().0.unset()?,
            }
            self.armed = deadline;
        }
        if deadline.is_none() {
            return std::future::pending().await;
        }
        loop {
            let mut ready = self.fd.readable().await?;
            // Reading the expiration count clears the readiness; EAGAIN
            // (nothing expired yet) makes tokio wait again.
            match ready.try_io(|fd| fd.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(result) => {
                    self.armed = None;
                    return result;
                }
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn fires_at_the_deadline_not_before() {
        runtime().block_on(async {
            let mut timer = DeadlineTimer::new().unwrap();
            let start = Instant::now();
            let deadline = start + Duration::from_millis(30);
            timer.wait(Some(deadline)).await.unwrap();
            assert!(Instant::now() >= deadline);
            // A deadline already past fires at once.
            let past = Instant::now() - Duration::from_millis(5);
            tokio::time::timeout(Duration::from_secs(1), timer.wait(Some(past)))
                .await
                .expect("a past deadline fires at once")
                .unwrap();
        });
    }

    #[test]
    fn a_cancelled_wait_keeps_the_deadline_and_none_waits_forever() {
        runtime().block_on(async {
            let mut timer = DeadlineTimer::new().unwrap();
            let deadline = Instant::now() + Duration::from_millis(40);
            // Cancelled before the deadline, as when a frame arrives first.
            let early = tokio::time::timeout(Duration::from_millis(5), timer.wait(Some(deadline)));
            assert!(early.await.is_err());
            timer.wait(Some(deadline)).await.unwrap();
            assert!(Instant::now() >= deadline);
            let never = tokio::time::timeout(Duration::from_millis(30), timer.wait(None));
            assert!(never.await.is_err(), "no deadline, no wake-up");
        });
    }
}
