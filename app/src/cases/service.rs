use chrono::NaiveDate;
use entities::case;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::Catalogue;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;

/// A case as the application uses it.
#[derive(Clone, Debug)]
pub struct Case {
    pub model: case::Model,
    pub catalogue: Catalogue,
}

impl Case {
    fn from_model(model: case::Model) -> AppResult<Self> {
        let catalogue = serde_json::from_value(model.catalogue.clone())
            .map_err(|e| AppError::internal(format!("case {} catalogue: {e}", model.slug)))?;
        Ok(Self { model, catalogue })
    }
    pub fn is_open_on(&self, day: NaiveDate) -> bool {
        self.model.intake_opens_on <= day && self.model.intake_closes_on.is_none_or(|c| day <= c)
    }
}

pub async fn all_cases(db: &impl ConnectionTrait) -> AppResult<Vec<Case>> {
    let models = case::Entity::find().order_by_asc(case::Column::Slug).all(db).await?;
    models.into_iter().map(Case::from_model).collect()
}

pub async fn open_cases(db: &impl ConnectionTrait, today: NaiveDate) -> AppResult<Vec<Case>> {
    let models = case::Entity::find().order_by_asc(case::Column::Slug).all(db).await?;
    let cases: AppResult<Vec<Case>> = models.into_iter().map(Case::from_model).collect();
    Ok(cases?.into_iter().filter(|c| c.is_open_on(today)).collect())
}

pub async fn by_slug(db: &impl ConnectionTrait, slug: &str) -> AppResult<Case> {
    let model = case::Entity::find().filter(case::Column::Slug.eq(slug)).one(db).await?.ok_or(AppError::NotFound)?;
    Case::from_model(model)
}

pub async fn by_id(db: &impl ConnectionTrait, id: uuid::Uuid) -> AppResult<Case> {
    Case::from_model(case::Entity::find_by_id(id).one(db).await?.ok_or(AppError::NotFound)?)
}

/// Cases change rarely (seed, administrators); lookups on every request
/// are served from memory for a short time. Several instances each keep
/// their own copy, so an edit is visible everywhere within `CASE_CACHE_TTL`.
pub const CASE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Default)]
pub struct CaseCache {
    entries: std::sync::RwLock<Vec<(std::time::Instant, Case)>>,
}

impl CaseCache {
    fn fresh(&self, pick: impl Fn(&Case) -> bool) -> Option<Case> {
        let entries = self.entries.read().ok()?;
        entries.iter().find(|(at, c)| at.elapsed() < CASE_CACHE_TTL && pick(c)).map(|(_, c)| c.clone())
    }

    fn remember(&self, case: &Case) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|(at, c)| c.model.id != case.model.id && at.elapsed() < CASE_CACHE_TTL);
            entries.push((std::time::Instant::now(), case.clone()));
        }
    }

    /// Drop a case from the cache after it changed here (other instances see it within the TTL).
    pub fn forget(&self, id: uuid::Uuid) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|(_, c)| c.model.id != id);
        }
    }

    pub async fn by_id(&self, db: &impl ConnectionTrait, id: uuid::Uuid) -> AppResult<Case> {
        if let Some(c) = self.fresh(|c| c.model.id == id) {
            return Ok(c);
        }
        let case = by_id(db, id).await?;
        self.remember(&case);
        Ok(case)
    }

    pub async fn by_slug(&self, db: &impl ConnectionTrait, slug: &str) -> AppResult<Case> {
        if let Some(c) = self.fresh(|c| c.model.slug == slug) {
            return Ok(c);
        }
        let case = by_slug(db, slug).await?;
        self.remember(&case);
        Ok(case)
    }
}

#[derive(Serialize)]
pub struct OptionView {
    pub code: String,
    pub label: String,
}

/// The public description of a case, in one language.
#[derive(Serialize)]
pub struct CaseView {
    pub slug: String,
    pub title: String,
    pub defendant: String,
    pub summary: String,
    pub leaked_items: Vec<OptionView>,
    pub services: Vec<OptionView>,
    pub apology_options: Vec<OptionView>,
}

impl CaseView {
    pub fn new(case: &Case, lang: Lang) -> Self {
        let c = &case.catalogue;
        let opts = |v: &Vec<super::CatalogueOption>| {
            v.iter().map(|o| OptionView { code: o.code.clone(), label: o.label.get(lang).to_string() }).collect()
        };
        Self {
            slug: case.model.slug.clone(),
            title: c.title.get(lang).to_string(),
            defendant: c.defendant.get(lang).to_string(),
            summary: c.summary.get(lang).to_string(),
            leaked_items: opts(&c.leaked_items),
            services: opts(&c.services),
            apology_options: opts(&c.apology_options),
        }
    }
}
