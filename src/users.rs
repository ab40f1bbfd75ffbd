//! Users and groups, read from /etc/passwd and /etc/group directly.
//!
//! Not through glibc's NSS: a static binary (the small-RSS build, see FOOTPRINT.md) cannot
//! load NSS modules, and busybox crond reads these files the same way. Boxes that keep users
//! in LDAP are not this tool's audience.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

pub fn parse_passwd(text: &str) -> Vec<User> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(User {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: PathBuf::from(f[5]),
                shell: PathBuf::from(if f[6].is_empty() { "/bin/sh" } else { f[6] }),
            })
        })
        .collect()
}

pub fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(Group {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3].split(',').filter(|m| !m.is_empty()).map(str::to_string).collect(),
            })
        })
        .collect()
}

/// What tells a changed file from the one read before: a replaced file (useradd writes a new
/// one and renames it) has another inode, an edited one another mtime, ctime or size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp(Option<(u64, u64, u64, i64, i64, i64, i64)>);

impl Stamp {
    fn of(path: &Path) -> Stamp {
        Stamp(
            std::fs::metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec())),
        )
    }
}

/// The user and group databases of one root directory (`/` in production).
#[derive(Clone, Debug, Default)]
pub struct Db {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

impl Db {
    pub fn load(root: &Path) -> Db {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
        Db { users: parse_passwd(&read("etc/passwd")), groups: parse_group(&read("etc/group")) }
    }

    /// As [`Db::load`], but the files are read again only when one of them changed (another
    /// inode, size, mtime or ctime) since the last call for the same root; otherwise the last
    /// result is returned. For the daemon's reloads: a SIGHUP opens neither file unless an
    /// account changed.
    pub fn load_cached(root: &Path) -> Db {
        static LAST: Mutex<Option<(PathBuf, [Stamp; 2], Db)>> = Mutex::new(None);
        let stamps = [Stamp::of(&root.join("etc/passwd")), Stamp::of(&root.join("etc/group"))];
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((r, s, db)) = last.as_ref()
            && r == root
            && *s == stamps
        {
            return db.clone();
        }
        let db = Db::load(root);
        *last = Some((root.to_path_buf(), stamps, db.clone()));
        db
    }

    /// By name, or by number as crontab(5) does not allow but systemd's `User=` does.
    pub fn user(&self, spec: &str) -> Option<&User> {
        match spec.parse::<u32>() {
            Ok(uid) => self.users.iter().find(|u| u.uid == uid),
            Err(_) => self.users.iter().find(|u| u.name == spec),
        }
    }

    pub fn group(&self, spec: &str) -> Option<&Group> {
        match spec.parse::<u32>() {
            Ok(gid) => self.groups.iter().find(|g| g.gid == gid),
            Err(_) => self.groups.iter().find(|g| g.name == spec),
        }
    }

    /// What initgroups(3) would set: the primary group and every group listing the user.
    pub fn supplementary_gids(&self, user: &User, primary: u32) -> Vec<u32> {
        let mut gids = vec![primary];
        for g in &self.groups {
            if g.members.contains(&user.name) && !gids.contains(&g.gid) {
                gids.push(g.gid);
            }
        }
        gids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_loads_read_again_only_after_a_change() {
        let root = std::env::temp_dir().join(format!("runner-users-{}", std::process::id()));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "a:x:1:1::/a:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "a:x:1:\n").unwrap();
        assert_eq!(Db::load_cached(&root).users[0].name, "a");
        let first = Stamp::of(&root.join("etc/passwd"));
        assert_eq!(Db::load_cached(&root).users[0].name, "a");
        assert_eq!(Stamp::of(&root.join("etc/passwd")), first);
        // Replaced as useradd does: read again.
        std::fs::write(root.join("etc/passwd.new"), "b:x:2:2::/b:/bin/sh\n").unwrap();
        std::fs::rename(root.join("etc/passwd.new"), root.join("etc/passwd")).unwrap();
        assert_eq!(Db::load_cached(&root).users[0].name, "b");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn reads_users_and_member_groups() {
        let db = Db {
            users: parse_passwd("root:x:0:0:root:/root:/bin/bash\nci:x:1001:1001::/home/ci:\n"),
            groups: parse_group("ci:x:1001:\ndocker:x:998:ci,bob\nadm:x:4:bob\n"),
        };
        let ci = db.user("ci").unwrap();
        assert_eq!(ci.shell, PathBuf::from("/bin/sh"));
        assert_eq!(db.user("0").unwrap().name, "root");
        assert_eq!(db.supplementary_gids(ci, ci.gid), vec![1001, 998]);
        assert!(db.user("nobody-here").is_none());
    }
}
