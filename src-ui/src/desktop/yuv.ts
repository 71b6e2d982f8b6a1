// Draws the shell's raw I420 pictures on a canvas: WebGL with the YUV→RGB
// conversion in a fragment shader (three one-byte textures, no copy in
// JavaScript), or, where WebGL is missing, a 2D canvas fed by a JavaScript
// conversion (slow; correct).
//
// A picture is a 24-byte header — width u32, height u32, the time it left
// the decoder f64 (ms since the epoch), the tile's pictures sent and
// dropped so far u32 each, little-endian — then the Y, U and V planes
// (src-tauri/frames.rs).
//
// Which is faster depends on how the page is painted: composited through
// OpenGL, WebGL; painted in software (the shell's default on Linux, see
// src-tauri/lib.rs), the 2D canvas — a WebGL canvas is then read back for
// every picture (measured 13 against 21 pictures a second of 720p,
// `cargo xtask bench-desktop`).

export const HEADER_BYTES = 24;

export interface Picture {
  width: number;
  height: number;
  /** When the shell got it from the decoder (ms since the epoch). */
  decodedAt: number;
  /** The tile's pictures sent, and dropped unseen, so far. */
  sent: number;
  dropped: number;
  y: Uint8Array;
  u: Uint8Array;
  v: Uint8Array;
}

/** Splits a picture into its planes; null when the bytes do not add up. */
export function parsePicture(buffer: ArrayBuffer): Picture | null {
  if (buffer.byteLength < HEADER_BYTES) return null;
  const view = new DataView(buffer);
  const width = view.getUint32(0, true);
  const height = view.getUint32(4, true);
  const decodedAt = view.getFloat64(8, true);
  const sent = view.getUint32(16, true);
  const dropped = view.getUint32(20, true);
  const luma = width * height;
  const chroma = (width / 2) * (height / 2);
  if (width === 0 || height === 0 || width % 2 || height % 2 || buffer.byteLength !== HEADER_BYTES + luma + 2 * chroma)
    return null;
  return {
    width,
    height,
    decodedAt,
    sent,
    dropped,
    y: new Uint8Array(buffer, HEADER_BYTES, luma),
    u: new Uint8Array(buffer, HEADER_BYTES + luma, chroma),
    v: new Uint8Array(buffer, HEADER_BYTES + luma + chroma, chroma),
  };
}

export interface Renderer {
  draw(picture: Picture): void;
  readonly kind: "webgl" | "2d";
}

const VERTEX = `
attribute vec2 position;
varying vec2 uv;
void main() {
  uv = vec2((position.x + 1.0) / 2.0, (1.0 - position.y) / 2.0);
  gl_Position = vec4(position, 0.0, 1.0);
}`;

// BT.601, limited range: what OpenH264 and Chromium's camera pictures use.
const FRAGMENT = `
precision mediump float;
varying vec2 uv;
uniform sampler2D yPlane;
uniform sampler2D uPlane;
uniform sampler2D vPlane;
void main() {
  float y = 1.164 * (texture2D(yPlane, uv).r - 0.0625);
  float u = texture2D(uPlane, uv).r - 0.5;
  float v = texture2D(vPlane, uv).r - 0.5;
  gl_FragColor = vec4(y + 1.596 * v, y - 0.392 * u - 0.813 * v, y + 2.017 * u, 1.0);
}`;

function compile(gl: WebGLRenderingContext, type: number, source: string): WebGLShader | null {
  const shader = gl.createShader(type);
  if (!shader) return null;
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  return gl.getShaderParameter(shader, gl.COMPILE_STATUS) ? shader : null;
}

function webglRenderer(canvas: HTMLCanvasElement): Renderer | null {
  // preserveDrawingBuffer: the picture stays readable (tests read pixels).
  const gl = canvas.getContext("webgl", { preserveDrawingBuffer: true, antialias: false, depth: false });
  if (!gl) return null;
  const vs = compile(gl, gl.VERTEX_SHADER, VERTEX);
  const fs = compile(gl, gl.FRAGMENT_SHADER, FRAGMENT);
  const program = gl.createProgram();
  if (!vs || !fs || !program) return null;
  gl.attachShader(program, vs);
  gl.attachShader(program, fs);
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) return null;
  gl.useProgram(program);
  const quad = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, quad);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
  const position = gl.getAttribLocation(program, "position");
  gl.enableVertexAttribArray(position);
  gl.vertexAttribPointer(position, 2, gl.FLOAT, false, 0, 0);
  gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
  const textures = ["yPlane", "uPlane", "vPlane"].map((name, unit) => {
    const texture = gl.createTexture();
    gl.activeTexture(gl.TEXTURE0 + unit);
    gl.bindTexture(gl.TEXTURE_2D, texture);
    for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T]) gl.texParameteri(gl.TEXTURE_2D, p, gl.CLAMP_TO_EDGE);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.LINEAR);
    gl.uniform1i(gl.getUniformLocation(program, name), unit);
    return texture;
  });
  return {
    kind: "webgl",
    draw(p) {
      if (canvas.width !== p.width || canvas.height !== p.height) {
        canvas.width = p.width;
        canvas.height = p.height;
      }
      gl.viewport(0, 0, p.width, p.height);
      const planes: [Uint8Array, number, number][] = [
        [p.y, p.width, p.height],
        [p.u, p.width / 2, p.height / 2],
        [p.v, p.width / 2, p.height / 2],
      ];
      planes.forEach(([data, w, h], unit) => {
        gl.activeTexture(gl.TEXTURE0 + unit);
        gl.bindTexture(gl.TEXTURE_2D, textures[unit]);
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.LUMINANCE, w, h, 0, gl.LUMINANCE, gl.UNSIGNED_BYTE, data);
      });
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    },
  };
}

function canvas2dRenderer(canvas: HTMLCanvasElement): Renderer | null {
  const ctx = canvas.getContext("2d");
  if (!ctx) return null;
  let image: ImageData | null = null;
  return {
    kind: "2d",
    draw(p) {
      if (canvas.width !== p.width || canvas.height !== p.height || !image) {
        canvas.width = p.width;
        canvas.height = p.height;
        image = ctx.createImageData(p.width, p.height);
      }
      const out = image.data;
      const half = p.width / 2;
      for (let row = 0; row < p.height; row++) {
        for (let col = 0; col < p.width; col++) {
          const c = (row >> 1) * half + (col >> 1);
          const y = 1.164 * (p.y[row * p.width + col] - 16);
          const u = p.u[c] - 128;
          const v = p.v[c] - 128;
          const o = (row * p.width + col) * 4;
          out[o] = y + 1.596 * v;
          out[o + 1] = y - 0.392 * u - 0.813 * v;
          out[o + 2] = y + 2.017 * u;
          out[o + 3] = 255;
        }
      }
      ctx.putImageData(image, 0, 0);
    },
  };
}

/** A renderer for this canvas: `prefer`red, or the other where that is missing. */
export function createRenderer(canvas: HTMLCanvasElement, prefer: "webgl" | "2d"): Renderer | null {
  if (prefer === "2d") return canvas2dRenderer(canvas);
  return webglRenderer(canvas) ?? canvas2dRenderer(canvas);
}
