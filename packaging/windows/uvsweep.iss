; Inno Setup script for uvsweep on Windows: `iscc /DVersion=X.Y.Z packaging\windows\uvsweep.iss`
; (packaging/build.py runs it after PyInstaller when iscc is on PATH). Installs per user, no admin.
#ifndef Version
  #define Version "0.0.0"
#endif

[Setup]
AppId={{6F1C2A6E-6B0B-4E0C-9C2F-5D1B0B7C8A31}
AppName=uvsweep
AppVersion={#Version}
AppPublisher=uvsweep developers
DefaultDirName={localappdata}\Programs\uvsweep
DefaultGroupName=uvsweep
PrivilegesRequired=lowest
OutputDir=..\..\dist
OutputBaseFilename=uvsweep-{#Version}-setup
SetupIconFile=..\..\assets\uvsweep.ico
UninstallDisplayIcon={app}\uvsweep.exe
Compression=lzma2
SolidCompression=yes
WizardStyle=modern

[Files]
Source: "..\..\dist\uvsweep\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Tasks]
Name: "startatlogin"; Description: "Start uvsweep when I log in"; Flags: unchecked

[Icons]
; The AppUserModelID is the one desktop-notifier registers for the toasts (its app name,
; `uvsweep`), so Windows shows them under the shortcut's name and icon. uvsweepw.exe is the
; windowed build: no console window.
Name: "{group}\uvsweep"; Filename: "{app}\uvsweepw.exe"; Parameters: "tray"; AppUserModelID: "uvsweep"
Name: "{group}\Uninstall uvsweep"; Filename: "{uninstallexe}"

[Registry]
; The same value `uvsweep autostart enable` writes, so the two agree.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "uvsweep"; ValueData: """{app}\uvsweepw.exe"" tray"; Tasks: startatlogin; Flags: uninsdeletevalue

[UninstallDelete]
Type: filesandordirs; Name: "{app}"

[Code]
// Uninstalling removes every start-at-login trace, whichever way it was turned on.
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then
  begin
    RegDeleteValue(HKCU, 'Software\Microsoft\Windows\CurrentVersion\Run', 'uvsweep');
    RegDeleteValue(HKCU, 'Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run', 'uvsweep');
  end;
end;

[Run]
Filename: "{app}\uvsweepw.exe"; Parameters: "tray"; Description: "Start uvsweep now"; Flags: nowait postinstall skipifsilent
