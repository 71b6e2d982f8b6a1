//! An I420 frame: full-resolution luma, quarter-resolution chroma, planes
//! stored one after the other without padding.

use openh264::formats::YUVSource;

/// An I420 picture with even dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl I420Frame {
    /// A black frame. Odd dimensions are rounded down to even ones.
    pub fn black(width: usize, height: usize) -> I420Frame {
        let (width, height) = (width & !1, height & !1);
        let luma = width * height;
        let mut data = vec![16; luma + luma / 2];
        data[luma..].fill(128);
        I420Frame {
            width,
            height,
            data,
        }
    }

    /// A frame from planes with the given strides (as decoders hand them out).
    pub fn from_planes(
        width: usize,
        height: usize,
        (y, u, v): (&[u8], &[u8], &[u8]),
        (y_stride, u_stride, v_stride): (usize, usize, usize),
    ) -> Option<I420Frame> {
        let (cw, ch) = (width / 2, height / 2);
        let mut frame = I420Frame::black(width, height);
        let (width, height) = (frame.width, frame.height);
        let copy = |dst: &mut [u8], src: &[u8], w: usize, h: usize, stride: usize| -> Option<()> {
            for row in 0..h {
                let line = src.get(row * stride..row * stride + w)?;
                dst[row * w..row * w + w].copy_from_slice(line);
            }
            Some(())
        };
        let luma = width * height;
        let (yd, rest) = frame.data.split_at_mut(luma);
        let (ud, vd) = rest.split_at_mut(cw * ch);
        copy(yd, y, width, height, y_stride)?;
        copy(ud, u, cw, ch, u_stride)?;
        copy(vd, v, cw, ch, v_stride)?;
        Some(frame)
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The luma plane.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.width * self.height]
    }

    pub fn y_mut(&mut self) -> &mut [u8] {
        let luma = self.width * self.height;
        &mut self.data[..luma]
    }

    /// The three planes, to write into.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let luma = self.width * self.height;
        let (y, chroma) = self.data.split_at_mut(luma);
        let (u, v) = chroma.split_at_mut(luma / 4);
        (y, u, v)
    }

    /// The width and height of [`Self::halved`].
    pub fn halved_size(&self) -> (usize, usize) {
        (
            ((self.width / 2) & !1).max(2),
            ((self.height / 2) & !1).max(2),
        )
    }

    /// The frame at half its width and height (each pixel the mean of
    /// four), dimensions kept even: what a narrow path can carry.
    pub fn halved(&self) -> I420Frame {
        let (w, h) = self.halved_size();
        let mut out = I420Frame::black(w, h);
        let (w, h) = (out.width, out.height);
        let shrink = |dst: &mut [u8], src: &[u8], sw: usize, dw: usize, dh: usize| {
            for row in 0..dh {
                for col in 0..dw {
                    let at =
                        |r: usize, c: usize| u16::from(src.get(r * sw + c).copied().unwrap_or(128));
                    let sum = at(2 * row, 2 * col)
                        + at(2 * row, 2 * col + 1)
                        + at(2 * row + 1, 2 * col)
                        + at(2 * row + 1, 2 * col + 1);
                    dst[row * dw + col] = ((sum + 2) / 4) as u8;
                }
            }
        };
        let luma = self.width * self.height;
        let (sy, schroma) = self.data.split_at(luma);
        let (su, sv) = schroma.split_at(luma / 4);
        let (dy, du, dv) = out.planes_mut();
        shrink(dy, sy, self.width, w, h);
        shrink(du, su, self.width / 2, w / 2, h / 2);
        shrink(dv, sv, self.width / 2, w / 2, h / 2);
        out
    }

    /// The whole frame, Y then U then V.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }
}

impl YUVSource for I420Frame {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        I420Frame::y(self)
    }

    fn u(&self) -> &[u8] {
        let luma = self.width * self.height;
        &self.data[luma..luma + luma / 4]
    }

    fn v(&self) -> &[u8] {
        let luma = self.width * self.height;
        &self.data[luma + luma / 4..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_and_keeps_dimensions_even() {
        let mut frame = I420Frame::black(640, 360);
        frame.y_mut()[..2].copy_from_slice(&[200, 100]);
        frame.y_mut()[640..642].copy_from_slice(&[50, 50]);
        let half = frame.halved();
        assert_eq!((half.width(), half.height()), (320, 180));
        assert_eq!(half.y()[0], 100); // (200 + 100 + 50 + 50) / 4
        assert_eq!(half.as_bytes().len(), 320 * 180 * 3 / 2);
        let odd = I420Frame::black(642, 362).halved();
        assert_eq!((odd.width(), odd.height()), (320, 180));
    }
}
