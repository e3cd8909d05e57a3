//! The tasks posted over the HTTP API, kept in `tasks/` in the data directory (one JSON file
//! per upload, named after its task ids) so that they are installed again at start; and
//! forgotten again when a task is deleted.

use super::{Dispatch, LoadError, TaskUpload};
use crate::persist::replace_json;
use crate::task;
use sha2::Digest;
use std::path::{Path, PathBuf};

impl Dispatch {
    /// Keeps a posted upload so it is installed again after a restart.
    pub fn persist_upload(
        &self,
        task_ids: &[String],
        upload: &TaskUpload,
    ) -> Result<(), LoadError> {
        let dir = self.dir.join("tasks");
        let io = |path: PathBuf| move |source| LoadError::Io { path, source };
        std::fs::create_dir_all(&dir).map_err(io(dir.clone()))?;
        let name: String = task_ids
            .join("+")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(100)
            .collect();
        // The readable part folds different ids together ("site.a", "site/a"): a digest of the
        // exact ids keeps their files apart.
        let digest = sha2::Sha256::digest(task_ids.join("\n").as_bytes());
        let path = dir.join(format!("{name}-{}.json", hex::encode(&digest[..8])));
        replace_json(&path, upload).map_err(io(path.clone()))
    }

    /// Uploads kept by earlier runs, oldest first.
    pub fn persisted_uploads(&self) -> Vec<(PathBuf, Result<TaskUpload, String>)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("tasks")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let t = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, p)
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                let parsed = std::fs::read(&p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
                (p, parsed)
            })
            .collect()
    }

    /// Deletes the saved copy of task `task_id` (posted over the API), so that it is not
    /// installed again at start: the file is deleted when the task was the only one of its
    /// upload, else the upload is saved again without it.
    pub fn forget_upload(&self, task_id: &str) -> Result<(), LoadError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LoadError::Io { path, source }
        };
        for (path, upload) in self.persisted_uploads() {
            let Ok(mut upload) = upload else { continue };
            let Ok(tasks) =
                task::parse(&upload.origin, &upload.content, Path::new(&upload.base_dir))
            else {
                continue;
            };
            if !tasks.iter().any(|t| t.task_id == task_id) {
                continue;
            }
            if tasks.iter().all(|t| t.task_id == task_id) {
                std::fs::remove_file(&path).map_err(io(&path))?;
                continue;
            }
            // Several tasks in one file (an array): keep the others.
            let Ok(serde_json::Value::Array(mut items)) =
                serde_json::from_str::<serde_json::Value>(&upload.content)
            else {
                continue;
            };
            items.retain(|item| match item.get("task_id") {
                Some(serde_json::Value::String(s)) => s != task_id,
                Some(serde_json::Value::Number(n)) => n.to_string() != task_id,
                _ => true,
            });
            upload.content = serde_json::to_string_pretty(&items).unwrap_or_default();
            replace_json(&path, &upload).map_err(io(&path))?;
        }
        Ok(())
    }
}
