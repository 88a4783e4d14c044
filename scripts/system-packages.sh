#!/usr/bin/env bash
# Install the Debian packages the hotline needs, only those missing (run as root on Debian 12).
# Each line: a command or file that proves the package is there, then the package.
set -euo pipefail

need=()
check() {  # check <probe> <package>
    local probe=$1 package=$2
    if [[ $probe == /* ]]; then
        [[ -e $probe ]] || need+=("$package")
    else
        command -v "$probe" >/dev/null 2>&1 || need+=("$package")
    fi
}

check espeak-ng espeak-ng     # Mandarin TTS for prompts without a recording
check sox sox                 # resampling prompts and test audio to 8 kHz
check kamailio kamailio       # the SIP front (hotline serve starts and supervises it)
# PortAudio for the console's softphone (sounddevice); without it the softphone is silent.
ldconfig -p 2>/dev/null | grep 'libportaudio\.so\.2' >/dev/null || need+=(libportaudio2)
if [[ ${HOTLINE_DEV:-0} == 1 ]]; then
    check baresip baresip-core  # a third-party SIP caller for the tests
    # The softphone tests: a private PulseAudio with null sinks as the lawyer's headset,
    # reached by PortAudio through ALSA's pulse PCM.
    check pulseaudio pulseaudio
    check pactl pulseaudio-utils
    compgen -G '/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so' >/dev/null \
        || need+=(libasound2-plugins)
fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)

if ((${#need[@]})); then
    echo "安装系统软件包: ${need[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "需要 root 权限安装: apt-get install ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
