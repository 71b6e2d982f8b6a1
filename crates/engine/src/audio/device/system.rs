//! The computer's own sound, shared with a screen: what every other program
//! plays, captured as the speaker hears it — and never Huddle's own
//! playback, or each member would hear the call come back from the sharer.
//!
//! Windows 10 version 2004 (build 19041) and later: WASAPI *process
//! loopback* with our process tree excluded (`ActivateAudioInterfaceAsync`
//! on the virtual process-loopback device), in shared mode, 48 kHz stereo
//! 16-bit PCM asked for (the audio engine converts; such a client has no
//! mix format to ask), event-driven as Microsoft's own sample is, read on a
//! thread of its own, averaged to mono and handed over in 20 ms frames.
//! cpal's loopback (an input stream on the output device) is not used: it
//! records everything the device plays, the call's own voices included.
//! Elsewhere [`SystemSound::open`] says it is not available: PulseAudio's
//! and Core Audio's monitors carry the call's playback too.

use tokio::sync::mpsc;

use super::AudioError;
use crate::audio::source::AudioSource;
use crate::audio::FRAME_SAMPLES;

/// The computer's sound, 48 kHz mono in 20 ms frames.
#[derive(Debug)]
pub struct SystemSound {
    frames: mpsc::Receiver<Vec<i16>>,
    /// Set when dropped: the capture thread ends.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SystemSound {
    /// Starts capturing the computer's sound without Huddle's own.
    #[cfg(windows)]
    pub fn open() -> Result<SystemSound, AudioError> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // 200 ms of frames; a consumer further behind loses what comes then.
        let (tx, frames) = mpsc::channel(10);
        let (started, result) = std::sync::mpsc::sync_channel(1);
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("huddle-system-sound".into())
            .spawn(move || wasapi::run(&tx, &flag, &started))
            .map_err(AudioError::Io)?;
        result
            .recv()
            .map_err(|_| AudioError::SystemSound("the capture thread ended".into()))??;
        Ok(SystemSound { frames, stop })
    }

    /// Why the computer's sound cannot be shared on this platform (`None`:
    /// it can be tried; an older Windows says so when opened).
    pub fn unavailable() -> Option<&'static str> {
        if cfg!(windows) {
            None
        } else {
            Some("Sharing the computer's sound needs Windows 10 version 2004 or later.")
        }
    }

    /// Not available here (see the module's header).
    #[cfg(not(windows))]
    pub fn open() -> Result<SystemSound, AudioError> {
        Err(AudioError::SystemSoundUnavailable)
    }
}

impl Drop for SystemSound {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl AudioSource for SystemSound {
    /// The next 20 ms. A plain loopback delivers nothing while nothing
    /// plays (and process loopback may do the same), so silence is not a
    /// stall here: the frames simply wait.
    async fn next_frame(&mut self) -> Result<Vec<i16>, AudioError> {
        self.frames
            .recv()
            .await
            .ok_or(AudioError::SystemSound("the capture stopped".into()))
    }
}

/// Interleaved 16-bit samples of `channels` channels, averaged to mono
/// and appended to `pending`; every whole frame there is handed to `out`
/// (`false` once nobody listens any more).
pub fn frames_from(
    interleaved: &[i16],
    channels: usize,
    pending: &mut Vec<i16>,
    mut out: impl FnMut(Vec<i16>) -> bool,
) -> bool {
    let channels = channels.max(1);
    pending.extend(interleaved.chunks_exact(channels).map(|one| {
        let sum: i32 = one.iter().map(|&s| i32::from(s)).sum();
        // The mean of i16s is an i16.
        (sum / channels as i32) as i16
    }));
    while pending.len() >= FRAME_SAMPLES {
        let frame: Vec<i16> = pending.drain(..FRAME_SAMPLES).collect();
        if !out(frame) {
            return false;
        }
    }
    true
}

#[cfg(windows)]
mod wasapi {
    //! The capture thread: COM in the multithreaded apartment, the process
    //! loopback client activated, then read each time its event fires.
    //!
    //! COM and WASAPI are C interfaces: every call is `unsafe`, each with
    //! what makes it sound beside it (the house denies `unsafe` elsewhere).
    #![allow(unsafe_code)]

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use tokio::sync::mpsc;
    use windows::core::{implement, IUnknown, Interface, Ref};
    use windows::Win32::Foundation::{CloseHandle, HANDLE, WAIT_OBJECT_0};
    use windows::Win32::Media::Audio::AUDCLNT_STREAMFLAGS_EVENTCALLBACK;
    use windows::Win32::Media::Audio::{
        ActivateAudioInterfaceAsync, IActivateAudioInterfaceAsyncOperation,
        IActivateAudioInterfaceCompletionHandler, IActivateAudioInterfaceCompletionHandler_Impl,
        IAudioCaptureClient, IAudioClient, AUDCLNT_BUFFERFLAGS_SILENT, AUDCLNT_SHAREMODE_SHARED,
        AUDCLNT_STREAMFLAGS_AUTOCONVERTPCM, AUDCLNT_STREAMFLAGS_LOOPBACK,
        AUDIOCLIENT_ACTIVATION_PARAMS, AUDIOCLIENT_ACTIVATION_PARAMS_0,
        AUDIOCLIENT_ACTIVATION_TYPE_PROCESS_LOOPBACK, AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS,
        PROCESS_LOOPBACK_MODE_EXCLUDE_TARGET_PROCESS_TREE, VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK,
        WAVEFORMATEX, WAVE_FORMAT_PCM,
    };
    use windows::Win32::System::Com::StructuredStorage::PROPVARIANT;
    use windows::Win32::System::Com::{CoInitializeEx, CoUninitialize, BLOB, COINIT_MULTITHREADED};
    use windows::Win32::System::Threading::{CreateEventW, WaitForSingleObject};
    use windows::Win32::System::Variant::VT_BLOB;

    use super::frames_from;
    use crate::audio::device::AudioError;
    use crate::audio::SAMPLE_RATE;

    /// Stereo, as the audio engine mixes.
    const CHANNELS: u16 = 2;
    /// How long the engine's buffer is (100 ns units): 100 ms.
    const BUFFER_HNS: i64 = 1_000_000;
    /// The longest wait for the engine's event (ms) before the stop flag is
    /// looked at again: nothing comes while nothing plays.
    const WAIT_MS: u32 = 100;
    /// How long activation may take before it counts as failed.
    const ACTIVATION: Duration = Duration::from_secs(5);

    fn failed(what: &str, e: &windows::core::Error) -> AudioError {
        AudioError::SystemSound(format!("{what}: {e}"))
    }

    /// Captures until `stop` or until nobody listens; `started` is told
    /// once whether capture began.
    pub fn run(
        tx: &mpsc::Sender<Vec<i16>>,
        stop: &AtomicBool,
        started: &std::sync::mpsc::SyncSender<Result<(), AudioError>>,
    ) {
        // SAFETY: initialises COM for this thread alone; undone below.
        let com = unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) };
        if let Err(e) = com.ok() {
            let _ = started.send(Err(failed("COM could not start", &e)));
            return;
        }
        // SAFETY: an unnamed auto-reset event, closed below.
        match unsafe { CreateEventW(None, false, false, None) } {
            Ok(event) => {
                match open(event) {
                    Ok((client, capture)) => {
                        let _ = started.send(Ok(()));
                        read(&capture, event, tx, stop);
                        // SAFETY: a started client of this thread.
                        let _ = unsafe { client.Stop() };
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
                // SAFETY: the event created above; the client that
                // signalled it has been stopped and released.
                let _ = unsafe { CloseHandle(event) };
            }
            Err(e) => {
                let _ = started.send(Err(failed("no event for the capture", &e)));
            }
        }
        // SAFETY: pairs the successful CoInitializeEx above; every COM
        // object of this thread has been released by now.
        unsafe { CoUninitialize() };
    }

    #[implement(IActivateAudioInterfaceCompletionHandler)]
    struct Activated(std::sync::mpsc::SyncSender<windows::core::Result<IUnknown>>);

    impl IActivateAudioInterfaceCompletionHandler_Impl for Activated_Impl {
        fn ActivateCompleted(
            &self,
            operation: Ref<'_, IActivateAudioInterfaceAsyncOperation>,
        ) -> windows::core::Result<()> {
            let result = operation.ok().and_then(|operation| {
                let mut status = windows::core::HRESULT::default();
                let mut interface: Option<IUnknown> = None;
                // SAFETY: the operation is complete (this is its callback).
                unsafe { operation.GetActivateResult(&mut status, &mut interface)? };
                status.ok()?;
                interface.ok_or_else(|| windows::core::Error::from(status))
            });
            let _ = self.0.try_send(result);
            Ok(())
        }
    }

    /// The process-loopback client, initialised to signal `event`, and
    /// started.
    fn open(event: HANDLE) -> Result<(IAudioClient, IAudioCaptureClient), AudioError> {
        let mut params = AUDIOCLIENT_ACTIVATION_PARAMS {
            ActivationType: AUDIOCLIENT_ACTIVATION_TYPE_PROCESS_LOOPBACK,
            Anonymous: AUDIOCLIENT_ACTIVATION_PARAMS_0 {
                ProcessLoopbackParams: AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS {
                    TargetProcessId: std::process::id(),
                    ProcessLoopbackMode: PROCESS_LOOPBACK_MODE_EXCLUDE_TARGET_PROCESS_TREE,
                },
            },
        };
        let mut blob = PROPVARIANT::default();
        // SAFETY: a VT_BLOB variant pointing at `params`, which outlives
        // the activation (waited for below); nothing frees the blob.
        unsafe {
            let inner = &mut *blob.Anonymous.Anonymous;
            inner.vt = VT_BLOB;
            inner.Anonymous.blob = BLOB {
                cbSize: std::mem::size_of::<AUDIOCLIENT_ACTIVATION_PARAMS>() as u32,
                pBlobData: (&raw mut params).cast(),
            };
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let handler: IActivateAudioInterfaceCompletionHandler = Activated(tx).into();
        // SAFETY: the path is a static wide string, the variant is valid,
        // the handler a live COM object.
        unsafe {
            ActivateAudioInterfaceAsync(
                VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK,
                &IAudioClient::IID,
                Some(&raw const blob),
                &handler,
            )
        }
        .map_err(|e| {
            failed(
                "process loopback is not available (Windows 10 2004 or later)",
                &e,
            )
        })?;
        let client: IAudioClient = rx
            .recv_timeout(ACTIVATION)
            .map_err(|_| AudioError::SystemSound("activation did not complete".into()))?
            .and_then(|unknown| unknown.cast())
            .map_err(|e| failed("process loopback could not be activated", &e))?;
        let block = CHANNELS * 2;
        let format = WAVEFORMATEX {
            wFormatTag: WAVE_FORMAT_PCM as u16,
            nChannels: CHANNELS,
            nSamplesPerSec: SAMPLE_RATE,
            nAvgBytesPerSec: SAMPLE_RATE * u32::from(block),
            nBlockAlign: block,
            wBitsPerSample: 16,
            cbSize: 0,
        };
        // SAFETY: an activated client; the format lives across the call.
        unsafe {
            client.Initialize(
                AUDCLNT_SHAREMODE_SHARED,
                AUDCLNT_STREAMFLAGS_LOOPBACK
                    | AUDCLNT_STREAMFLAGS_EVENTCALLBACK
                    | AUDCLNT_STREAMFLAGS_AUTOCONVERTPCM,
                BUFFER_HNS,
                0,
                &format,
                None,
            )
        }
        .map_err(|e| failed("the loopback stream could not be set up", &e))?;
        // SAFETY: an initialised event-driven client; the event outlives it.
        unsafe { client.SetEventHandle(event) }
            .map_err(|e| failed("the loopback stream takes no event", &e))?;
        // SAFETY: an initialised client.
        let capture: IAudioCaptureClient =
            unsafe { client.GetService() }.map_err(|e| failed("no capture service", &e))?;
        // SAFETY: as above.
        unsafe { client.Start() }.map_err(|e| failed("the loopback stream did not start", &e))?;
        Ok((client, capture))
    }

    /// Reads what the engine captured each time `event` fires, until told
    /// to stop.
    fn read(
        capture: &IAudioCaptureClient,
        event: HANDLE,
        tx: &mpsc::Sender<Vec<i16>>,
        stop: &AtomicBool,
    ) {
        let channels = usize::from(CHANNELS);
        let mut pending = Vec::new();
        let mut silence = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: the live event the client signals.
            if unsafe { WaitForSingleObject(event, WAIT_MS) } != WAIT_OBJECT_0 {
                continue;
            }
            loop {
                // SAFETY: a started capture client of this thread.
                match unsafe { capture.GetNextPacketSize() } {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the computer's sound stopped");
                        return;
                    }
                }
                let (mut data, mut count, mut flags) = (std::ptr::null_mut(), 0u32, 0u32);
                // SAFETY: out-pointers to locals; the buffer is released below.
                if let Err(e) =
                    unsafe { capture.GetBuffer(&mut data, &mut count, &mut flags, None, None) }
                {
                    tracing::warn!(error = %e, "the computer's sound stopped");
                    return;
                }
                let samples = count as usize * channels;
                let listening = if flags & AUDCLNT_BUFFERFLAGS_SILENT.0 as u32 != 0
                    || data.is_null()
                {
                    silence.resize(samples, 0i16);
                    frames_from(&silence, channels, &mut pending, |f| deliver(tx, f))
                } else {
                    // SAFETY: the engine hands `count` frames of the asked
                    // format (16-bit, `CHANNELS`), aligned, valid until
                    // ReleaseBuffer.
                    let pcm = unsafe { std::slice::from_raw_parts(data.cast::<i16>(), samples) };
                    frames_from(pcm, channels, &mut pending, |f| deliver(tx, f))
                };
                // SAFETY: releases exactly what GetBuffer gave.
                let _ = unsafe { capture.ReleaseBuffer(count) };
                if !listening {
                    return;
                }
            }
        }
    }

    /// Hands a frame over (a full queue loses it); `false` once closed.
    fn deliver(tx: &mpsc::Sender<Vec<i16>>, frame: Vec<i16>) -> bool {
        !matches!(
            tx.try_send(frame),
            Err(mpsc::error::TrySendError::Closed(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_is_averaged_and_cut_into_whole_frames() {
        let stereo: Vec<i16> = (0..FRAME_SAMPLES * 3)
            .flat_map(|i| [1000 + (i % 7) as i16, -1000 + (i % 7) as i16])
            .collect();
        let mut pending = Vec::new();
        let mut frames = Vec::new();
        // 1.5 frames' worth, then the rest.
        let half = stereo.len() / 2;
        assert!(frames_from(&stereo[..half], 2, &mut pending, |f| {
            frames.push(f);
            true
        }));
        assert_eq!(frames.len(), 1);
        assert_eq!(pending.len(), FRAME_SAMPLES / 2);
        assert!(frames_from(&stereo[half..], 2, &mut pending, |f| {
            frames.push(f);
            true
        }));
        assert_eq!(frames.len(), 3);
        assert!(pending.is_empty());
        assert!(frames
            .iter()
            .flatten()
            .enumerate()
            .all(|(i, &s)| s == (i % 7) as i16));
    }

    #[test]
    fn extremes_do_not_overflow_and_a_closed_receiver_stops_the_capture() {
        let loud = [i16::MAX, i16::MAX, i16::MIN, i16::MIN].repeat(FRAME_SAMPLES);
        let mut pending = Vec::new();
        let mut got = Vec::new();
        assert!(!frames_from(&loud, 2, &mut pending, |f| {
            got.push(f);
            false
        }));
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0][..2], &[i16::MAX, i16::MIN]);
    }

    #[cfg(not(windows))]
    #[test]
    fn elsewhere_sharing_the_computers_sound_says_it_is_not_available() {
        let error = SystemSound::open().expect_err("only Windows has process loopback");
        assert!(error.to_string().contains("Windows"), "{error}");
    }
}
