// What the CPU this process runs on can do, where a code path depends on it.
#pragma once

namespace dfd {

// oneDNN runs bf16 convolutions natively only with AVX512_BF16 or AMX;
// elsewhere it emulates them, slower than fp32, so precision=bf16 is refused.
bool cpu_has_native_bf16();

}  // namespace dfd
