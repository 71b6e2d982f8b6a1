//! The `huddle` desktop app's entry point; everything is in the library.

// No console window beside the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    huddle_app::run();
}
