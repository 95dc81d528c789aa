/**
 * Test support (not published): runs the tensor-core int8 kernel's WGSL on a device without
 * `chromium-experimental-subgroup-matrix` by rewriting the subgroup-matrix builtins into
 * plain WGSL. Every lane loads WHOLE left/right fragments into private arrays (16 rows × 32 k
 * and 32 k × 16 columns, packed 4 int8 per word along k) and owns the result elements
 * lane + subgroupSize·j of each 16×16 fragment, which its MMAs (`dot4I8Packed`) and stores
 * compute and write. The semantics emulated are those measured on the H100:
 * `subgroupMatrixLoad<T>(&p, offset, false, stride)` reads element (r, c) at
 * p[offset + r·stride + c] in ELEMENTS (int8 bytes, little-endian in 32-bit words,
 * sign-extended); `subgroupMatrixStore(&p, offset, m, false, stride)` likewise for i32.
 * This checks the kernel's tiling, subgroup mapping, staging and epilogue indexing; it cannot
 * check the driver's own lowering of the builtins.
 */

const RESULT = 'subgroup_matrix_result<i32, 16, 16>'

function loaders(name: string): string {
  return `
fn smByte_${name}(i: u32) -> i32 { return (${name}[i >> 2u] << (24u - 8u * (i & 3u))) >> 24u; }
fn smWord_${name}(i: u32) -> u32 { return bitcast<u32>(${name}[i >> 2u]); }
// left: 16 rows × 32 k, packed [row][k/4]
fn smLoadL_${name}(m: ptr<private, array<u32, 128>>, off: u32, colMajor: bool, stride: u32) {
  let aligned = ((off | stride) & 3u) == 0u;
  for (var r = 0u; r < (16u + smZ); r = r + 1u) {
    for (var q = 0u; q < (8u + smZ); q = q + 1u) {
      let o = off + r * stride + 4u * q;
      if (aligned) {
        (*m)[r * 8u + q] = smWord_${name}(o);
      } else {
        (*m)[r * 8u + q] = pack4xI8(vec4<i32>(smByte_${name}(o), smByte_${name}(o + 1u), smByte_${name}(o + 2u), smByte_${name}(o + 3u)));
      }
    }
  }
}
// right: 32 k × 16 columns, packed [column][k/4]
fn smLoadR_${name}(m: ptr<private, array<u32, 128>>, off: u32, colMajor: bool, stride: u32) {
  let aligned = ((off | stride) & 3u) == 0u;
  for (var q = 0u; q < (8u + smZ); q = q + 1u) {
    for (var c4 = 0u; c4 < (4u + smZ); c4 = c4 + 1u) {
      let o = off + 4u * q * stride + 4u * c4;
      var w0 = vec4<i32>(0);
      var w1 = vec4<i32>(0);
      var w2 = vec4<i32>(0);
      var w3 = vec4<i32>(0);
      if (aligned) {
        w0 = unpack4xI8(smWord_${name}(o));
        w1 = unpack4xI8(smWord_${name}(o + stride));
        w2 = unpack4xI8(smWord_${name}(o + 2u * stride));
        w3 = unpack4xI8(smWord_${name}(o + 3u * stride));
      } else {
        for (var j = 0u; j < (4u + smZ); j = j + 1u) {
          w0[j] = smByte_${name}(o + j);
          w1[j] = smByte_${name}(o + stride + j);
          w2[j] = smByte_${name}(o + 2u * stride + j);
          w3[j] = smByte_${name}(o + 3u * stride + j);
        }
      }
      for (var j = 0u; j < (4u + smZ); j = j + 1u) {
        (*m)[(4u * c4 + j) * 8u + q] = pack4xI8(vec4<i32>(w0[j], w1[j], w2[j], w3[j]));
      }
    }
  }
}`
}

/**
 * The emulated WGSL of `sgmGemmWgsl(kind, tile, subgroupSize)`. Subgroup id and lane come
 * from the local index (lid / subgroupSize, lid % subgroupSize), so the workgroup must be
 * sgM·sgN·subgroupSize invocations as generated; any device subgroup size works.
 */
export function emulateSubgroupMatrix(src: string, subgroupSize: number): string {
  const sources = new Set<string>()
  const frags = new Set<string>()
  const results = new Set<string>()
  // each lane owns result elements lane + subgroupSize·j of every fragment
  const share = 256 / subgroupSize
  const out = src
    .replace('enable subgroups;\n', '')
    .replace('enable chromium_experimental_subgroup_matrix;\n', '')
    .replace('diagnostic(off, chromium.subgroup_matrix_uniformity);\n', '')
    .replace(/, (@builtin\(subgroup_id\) sg: u32, )?@builtin\(subgroup_invocation_id\) lane: u32, @builtin\(subgroup_size\) sgSize: u32\) \{/, (_m, sgId: string | undefined) =>
      `) {\n  let sgSize = ${subgroupSize}u;\n${sgId ? '  let sg = lid / sgSize;\n' : ''}  let lane = lid % sgSize;\n  smLane = lane;\n  smZ = select(0u, 1u, params._a == 0x5eedu);`,
    )
    // let x = subgroupMatrixLoad<LEFT|RIGHT>(&S, args);  →  smLoadL_S(&x, args);
    .replace(/let (\w+) = subgroupMatrixLoad<subgroup_matrix_(left|right)<i8, \d+, \d+>>\(&(\w+), /g, (_m, x: string, side: string, s: string) => {
      frags.add(x)
      sources.add(s)
      return `smLoad${side === 'left' ? 'L' : 'R'}_${s}(&${x}, `
    })
    // var c: RESULT;  →  module-scope private, zeroed where the kernel declares it (once per
    // row tile when the kernel loops over row tiles)
    .replace(new RegExp(`  var (\\w+): ${RESULT.replace(/[<>]/g, '\\$&')};\\n`, 'g'), (_m, c: string) => {
      results.add(c)
      return `  ${c} = array<i32, ${share}>();\n`
    })
    .replace(/(\w+) = subgroupMatrixMultiplyAccumulate\((\w+), (\w+), \w+\);/g, 'smMma(&$2, &$3, &$1);')
    .replace(/subgroupMatrixStore\(&Ws, (.+?), (\w+), false, (\w+)\);/g, 'smStoreWs($1, &$2, $3);')
  if (/subgroupMatrix|subgroup_matrix|@builtin\(subgroup/.test(out)) throw new Error('emulation left a subgroup-matrix builtin in place')
  return `${out}
var<private> smLane: u32;
// 0 at run time (params._a is 0) but unknown to the shader compiler: keeps lavapipe's LLVM
// from fully unrolling and inlining every emulated builtin (minutes of compile time)
var<private> smZ: u32;
${[...frags].map((f) => `var<private> ${f}: array<u32, 128>;`).join('\n')}
${[...results].map((c) => `var<private> ${c}: array<i32, ${share}>;`).join('\n')}
${[...sources].map(loaders).join('\n')}
fn smMma(a: ptr<private, array<u32, 128>>, b: ptr<private, array<u32, 128>>, c: ptr<private, array<i32, ${share}>>) {
  for (var j = 0u; j < ${share}u + smZ; j = j + 1u) {
    let t = smLane + ${subgroupSize}u * j;
    let r = t / 16u;
    let n = t % 16u;
    var s = (*c)[j];
    for (var q = 0u; q < (8u + smZ); q = q + 1u) { s = s + dot4I8Packed((*a)[r * 8u + q], (*b)[n * 8u + q]); }
    (*c)[j] = s;
  }
}
fn smStoreWs(off: u32, m: ptr<private, array<i32, ${share}>>, stride: u32) {
  for (var j = 0u; j < ${share}u + smZ; j = j + 1u) {
    let t = smLane + ${subgroupSize}u * j;
    Ws[off + (t / 16u) * stride + t % 16u] = (*m)[j];
  }
}`
}
