//! Pixel format conversions between what cameras deliver, I420, and RGB
//! (for snapshots). BT.601 limited range, as H.264 camera video uses.

use openh264::formats::YUVSource;

use super::I420Frame;

/// How a packed picture lays out its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packed {
    /// Bytes per pixel: 3 for RGB, 4 for BGRX (X11's 24-bit depth).
    pub bytes_per_pixel: usize,
    /// Where red, green and blue are within a pixel.
    pub rgb: [usize; 3],
    /// Bytes per row (at least `width * bytes_per_pixel`).
    pub stride: usize,
}

impl Packed {
    /// Tightly packed RGB, `width` pixels a row.
    pub fn rgb(width: usize) -> Packed {
        Packed {
            bytes_per_pixel: 3,
            rgb: [0, 1, 2],
            stride: width * 3,
        }
    }

    /// Blue, green, red and a padding byte per pixel, `width` pixels a row.
    pub fn bgrx(width: usize) -> Packed {
        Packed {
            bytes_per_pixel: 4,
            rgb: [2, 1, 0],
            stride: width * 4,
        }
    }
}

/// A picture from packed 8-bit RGB (`width * height * 3` bytes); `None`
/// when the buffer is too short.
pub fn rgb_to_i420(rgb: &[u8], width: usize, height: usize) -> Option<I420Frame> {
    packed_to_i420(rgb, width, height, Packed::rgb(width), 1)
}

/// A picture from packed pixels laid out as `layout` says, shrunk `scale`
/// times in both directions (each pixel the average of a `scale`×`scale`
/// block); `None` when the buffer is too short or the result too small.
pub fn packed_to_i420(
    data: &[u8],
    width: usize,
    height: usize,
    layout: Packed,
    scale: usize,
) -> Option<I420Frame> {
    let scale = scale.max(1);
    let row_bytes = width.checked_mul(layout.bytes_per_pixel)?;
    let needed = layout.stride.checked_mul(height.checked_sub(1)?)? + row_bytes;
    if layout.stride < row_bytes
        || layout.rgb.iter().any(|&o| o >= layout.bytes_per_pixel)
        || data.len() < needed
        || width / scale < 2
        || height / scale < 2
    {
        return None;
    }
    let mut frame = I420Frame::black(width / scale, height / scale);
    let (w, h) = (frame.width(), frame.height());
    let (y, u, v) = frame.planes_mut();
    let [ro, go, bo] = layout.rgb;
    let samples = (scale * scale) as i32;
    let pixel = |col: usize, row: usize| {
        let (mut r, mut g, mut b) = (0, 0, 0);
        for dy in 0..scale {
            let line = (row * scale + dy) * layout.stride;
            for dx in 0..scale {
                let i = line + (col * scale + dx) * layout.bytes_per_pixel;
                r += i32::from(data[i + ro]);
                g += i32::from(data[i + go]);
                b += i32::from(data[i + bo]);
            }
        }
        if samples == 1 {
            (r, g, b)
        } else {
            (r / samples, g / samples, b / samples)
        }
    };
    // One pass over the 2×2 blocks a chroma sample covers: each pixel is
    // read once, for its luma and its share of the block's chroma.
    for row in 0..h / 2 {
        for col in 0..w / 2 {
            let (mut r, mut g, mut b) = (0, 0, 0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (x, yy) = (col * 2 + dx, row * 2 + dy);
                let p = pixel(x, yy);
                y[yy * w + x] = clamp(((66 * p.0 + 129 * p.1 + 25 * p.2 + 128) >> 8) + 16);
                r += p.0;
                g += p.1;
                b += p.2;
            }
            let (r, g, b) = (r / 4, g / 4, b / 4);
            u[row * (w / 2) + col] = clamp(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
            v[row * (w / 2) + col] = clamp(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
        }
    }
    Some(frame)
}

/// A picture from packed YUYV 4:2:2 (`width * height * 2` bytes), the
/// format most webcams offer uncompressed.
pub fn yuyv_to_i420(yuyv: &[u8], width: usize, height: usize) -> Option<I420Frame> {
    if yuyv.len() < width * height * 2 || width < 2 || height < 2 {
        return None;
    }
    let mut frame = I420Frame::black(width, height);
    let (w, h) = (frame.width(), frame.height());
    let (y, u, v) = frame.planes_mut();
    for row in 0..h {
        let line = &yuyv[row * width * 2..];
        for col in 0..w {
            y[row * w + col] = line[col * 2];
        }
        // 4:2:2 has chroma on every line; I420 keeps every other one.
        if row % 2 == 0 {
            for col in 0..w / 2 {
                u[(row / 2) * (w / 2) + col] = line[col * 4 + 1];
                v[(row / 2) * (w / 2) + col] = line[col * 4 + 3];
            }
        }
    }
    Some(frame)
}

/// A picture from NV12 (a luma plane, then interleaved U and V).
pub fn nv12_to_i420(nv12: &[u8], width: usize, height: usize) -> Option<I420Frame> {
    if nv12.len() < width * height * 3 / 2 || width < 2 || height < 2 {
        return None;
    }
    let mut frame = I420Frame::black(width, height);
    let (w, h) = (frame.width(), frame.height());
    let (y, u, v) = frame.planes_mut();
    for row in 0..h {
        y[row * w..row * w + w].copy_from_slice(&nv12[row * width..row * width + w]);
    }
    let chroma = &nv12[width * height..];
    for row in 0..h / 2 {
        for col in 0..w / 2 {
            let i = row * width + col * 2;
            u[row * (w / 2) + col] = chroma[i];
            v[row * (w / 2) + col] = chroma[i + 1];
        }
    }
    Some(frame)
}

/// Packed 8-bit RGB of a picture, `width * height * 3` bytes.
pub fn i420_to_rgb(frame: &I420Frame) -> Vec<u8> {
    let (w, h) = (frame.width(), frame.height());
    let (y, u, v) = (frame.y(), YUVSource::u(frame), YUVSource::v(frame));
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        for col in 0..w {
            let c = i32::from(y[row * w + col]) - 16;
            let d = i32::from(u[(row / 2) * (w / 2) + col / 2]) - 128;
            let e = i32::from(v[(row / 2) * (w / 2) + col / 2]) - 128;
            rgb.push(clamp((298 * c + 409 * e + 128) >> 8));
            rgb.push(clamp((298 * c - 100 * d - 208 * e + 128) >> 8));
            rgb.push(clamp((298 * c + 516 * d + 128) >> 8));
        }
    }
    rgb
}

fn clamp(value: i32) -> u8 {
    value.clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rgb_round_trips_through_i420_within_rounding() {
        let (w, h) = (8, 4);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|_| [200u8, 60, 30]) // one flat colour: chroma exact
            .collect();
        let back = i420_to_rgb(&rgb_to_i420(&rgb, w, h).unwrap());
        for (a, b) in rgb.iter().zip(&back) {
            assert!((i32::from(*a) - i32::from(*b)).abs() <= 3, "{a} vs {b}");
        }
    }

    #[test]
    fn yuyv_and_nv12_keep_luma_and_chroma() {
        let (w, h) = (4, 2);
        let yuyv: Vec<u8> = (0..w * h / 2)
            .flat_map(|i| [i as u8, 90, i as u8, 160])
            .collect();
        let frame = yuyv_to_i420(&yuyv, w, h).unwrap();
        assert_eq!(frame.y(), &[0, 0, 1, 1, 2, 2, 3, 3]);
        assert_eq!(YUVSource::u(&frame), &[90, 90]);
        assert_eq!(YUVSource::v(&frame), &[160, 160]);
        let nv12 = [1, 2, 3, 4, 5, 6, 7, 8, 90, 160, 91, 161];
        let frame = nv12_to_i420(&nv12, w, h).unwrap();
        assert_eq!(YUVSource::u(&frame), &[90, 91]);
        assert_eq!(YUVSource::v(&frame), &[160, 161]);
    }

    #[test]
    fn bgrx_with_padding_and_shrunk_keeps_the_colours() {
        // 4×4 BGRX with 8 bytes of padding a row: left half red, right blue.
        let (w, h) = (4, 4);
        let layout = Packed {
            stride: w * 4 + 8,
            ..Packed::bgrx(w)
        };
        let mut data = vec![0u8; layout.stride * h];
        for row in 0..h {
            for col in 0..w {
                let i = row * layout.stride + col * 4;
                let bgr = if col < 2 { [0, 0, 255] } else { [255, 0, 0] };
                data[i..i + 3].copy_from_slice(&bgr);
            }
        }
        let full = i420_to_rgb(&packed_to_i420(&data, w, h, layout, 1).unwrap());
        assert!(full[0] > 200 && full[2] < 40, "red first: {:?}", &full[..3]);
        let shrunk = packed_to_i420(&data, w, h, layout, 2).unwrap();
        assert_eq!((shrunk.width(), shrunk.height()), (2, 2));
        let rgb = i420_to_rgb(&shrunk);
        // Chroma of a 2×2 picture is the average of both halves, luma not.
        assert!(rgb[0] > rgb[3], "{rgb:?}");
        assert!(
            packed_to_i420(&data, w, h, layout, 3).is_none(),
            "too small"
        );
        assert!(
            packed_to_i420(&data[..40], w, h, layout, 1).is_none(),
            "short"
        );
    }

    #[test]
    fn short_buffers_are_refused() {
        assert!(rgb_to_i420(&[0; 10], 4, 4).is_none());
        assert!(yuyv_to_i420(&[0; 10], 4, 4).is_none());
        assert!(nv12_to_i420(&[0; 10], 4, 4).is_none());
    }
}
