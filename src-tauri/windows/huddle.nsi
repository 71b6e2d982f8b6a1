; Huddle's Windows installer, packed by makensis 3 (`cargo xtask cross
; windows`; the test loop installs and uninstalls it under wine).
;
;   makensis -DVERSION=0.1.0 -DAPPDIR=<dir with huddle.exe> -DICON=icons/icon.ico \
;            -DOUTFILE=<setup.exe> huddle.nsi
;
; For the current user, without administrator rights: the app into
; %LOCALAPPDATA%\Programs\Huddle, a Start-menu entry, `huddle://` links
; opening the app (HKCU\Software\Classes\huddle), an entry in Settings →
; Apps with its uninstaller, and the Microsoft Edge WebView2 Runtime (which
; draws the app's window) fetched from Microsoft at install time where the
; machine does not have it yet — Windows 11 ships it.

; A 64-bit installer for the 64-bit app (and the one kind wine64 alone runs).
Target amd64-unicode
!macro Require NAME
  !ifndef ${NAME}
    !error "usage: makensis -DVERSION=x.y.z -DAPPDIR=dir -DICON=file.ico -DOUTFILE=setup.exe huddle.nsi"
  !endif
!macroend
!insertmacro Require VERSION
!insertmacro Require APPDIR
!insertmacro Require ICON
!insertmacro Require OUTFILE

!include "MUI2.nsh"
!include "LogicLib.nsh"

Name "Huddle"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\Huddle"
;; -DUNCOMPRESSED (the tests' debug builds): packed in seconds, not minutes.
!ifdef UNCOMPRESSED
  SetCompress off
!else
  SetCompressor /SOLID lzma
!endif
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "Huddle"
VIAddVersionKey "FileDescription" "Huddle installer"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "The Huddle authors"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_FINISHPAGE_RUN "$INSTDIR\huddle.exe"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Huddle"
; The WebView2 Runtime's client id in EdgeUpdate's registry (Microsoft's
; documented way to find an installed runtime).
!define WEBVIEW2_CLIENT "Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"

Section "Huddle"
  SetOutPath "$INSTDIR"
  File "${APPDIR}\huddle.exe"
  File "${APPDIR}\WebView2Loader.dll"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortcut "$SMPROGRAMS\Huddle.lnk" "$INSTDIR\huddle.exe"

  ; `huddle://join?…` links start the app with the link as its argument (a
  ; running app gets it from the second launch).
  WriteRegStr HKCU "Software\Classes\huddle" "" "URL:Huddle room link"
  WriteRegStr HKCU "Software\Classes\huddle" "URL Protocol" ""
  WriteRegStr HKCU "Software\Classes\huddle\DefaultIcon" "" "$INSTDIR\huddle.exe,0"
  WriteRegStr HKCU "Software\Classes\huddle\shell\open\command" "" '"$INSTDIR\huddle.exe" "%1"'

  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "Huddle"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "The Huddle authors"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\huddle.exe,0"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1

  Call EnsureWebView2
SectionEnd

; Installs the WebView2 Runtime if neither this machine nor this user has
; it: Microsoft's small bootstrapper, downloaded now (it may not be
; redistributed inside this installer's build here), run silently.
Function EnsureWebView2
  SetRegView 64
  ReadRegStr $0 HKLM "SOFTWARE\WOW6432Node\${WEBVIEW2_CLIENT}" "pv"
  ${If} $0 == ""
  ${OrIf} $0 == "0.0.0.0"
    ReadRegStr $0 HKCU "Software\${WEBVIEW2_CLIENT}" "pv"
  ${EndIf}
  ${If} $0 != ""
  ${AndIf} $0 != "0.0.0.0"
    DetailPrint "WebView2 Runtime $0 is installed."
    Return
  ${EndIf}
  DetailPrint "Downloading the Microsoft Edge WebView2 Runtime…"
  nsExec::ExecToLog 'powershell.exe -NoProfile -NonInteractive -Command "Invoke-WebRequest -UseBasicParsing -Uri https://go.microsoft.com/fwlink/p/?LinkId=2124703 -OutFile $\"$TEMP\MicrosoftEdgeWebview2Setup.exe$\""'
  Pop $1
  ${If} $1 == 0
    ExecWait '"$TEMP\MicrosoftEdgeWebview2Setup.exe" /silent /install' $1
    Delete "$TEMP\MicrosoftEdgeWebview2Setup.exe"
  ${EndIf}
  ${If} $1 != 0
    MessageBox MB_OK|MB_ICONEXCLAMATION "Huddle needs the Microsoft Edge WebView2 Runtime, which could not be installed now ($1). Install it from https://developer.microsoft.com/microsoft-edge/webview2/ and start Huddle again." /SD IDOK
  ${EndIf}
FunctionEnd

Section "Uninstall"
  Delete "$INSTDIR\huddle.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\Huddle.lnk"
  DeleteRegKey HKCU "Software\Classes\huddle"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
SectionEnd
