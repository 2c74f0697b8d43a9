{#-
  Under each attribution model, channel_performance's leads add up to the number of leads
  in lead_journeys (per project): no lead lost, none counted twice. A model missing from
  channel_performance shows with 0 leads.
-#}
{%- set project = has_project_column() %}

with totals as (

    select {{ 'project, ' if project }}count(*) as leads
    from {{ ref('lead_journeys') }}
    {{ 'group by project' if project }}

),

models as (

    select 'first_touch' as attribution_model
    union all
    select 'last_touch'

),

attributed as (

    select {{ with_project('attribution_model') }}, sum(leads) as leads
    from {{ ref('channel_performance') }}
    group by {{ with_project('attribution_model') }}

)

select {{ 'totals.project, ' if project }}models.attribution_model,
    totals.leads as leads,
    coalesce(attributed.leads, 0) as attributed_leads
from totals
cross join models
left join attributed
    on attributed.attribution_model = models.attribution_model
    {{ same_project('attributed', 'totals') }}
where coalesce(attributed.leads, 0) <> totals.leads
