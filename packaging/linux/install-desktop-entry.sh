#!/bin/sh
# Add Jackdaw to the desktop's application menu for the current user (no root needed):
#   ./install-desktop-entry.sh            install (run it from the unpacked jackdaw/ folder)
#   ./install-desktop-entry.sh --remove   remove the menu entry and icon again
# The folder itself can live anywhere; the menu entry points at where it is now.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
apps="$data/applications"
icons="$data/icons/hicolor"

if [ "${1:-}" = "--remove" ]; then
    rm -f "$apps/jackdaw.desktop" "$icons/256x256/apps/jackdaw.png" "$icons/scalable/apps/jackdaw.svg"
    echo "Removed the Jackdaw menu entry."
    exit 0
fi

[ -x "$here/jackdaw" ] || { echo "error: $here/jackdaw not found; run this from the unpacked folder" >&2; exit 1; }
mkdir -p "$apps" "$icons/256x256/apps" "$icons/scalable/apps"
cp "$here/jackdaw.png" "$icons/256x256/apps/jackdaw.png"
cp "$here/jackdaw.svg" "$icons/scalable/apps/jackdaw.svg"
# Quote the path for the Exec key (spaces are allowed inside double quotes).
sed -e "s|^Exec=.*|Exec=\"$here/jackdaw\" gui|" -e "s|^TryExec=.*|TryExec=$here/jackdaw|" \
    "$here/jackdaw.desktop" > "$apps/jackdaw.desktop"
chmod 644 "$apps/jackdaw.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$apps" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$icons" || true
echo "Installed $apps/jackdaw.desktop (runs $here/jackdaw gui)."
